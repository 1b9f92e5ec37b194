"""Admin-only API to start, poll and cancel runs and to activate model versions."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from retraining.models import TrainingRun
from tests.platform.factories import GalaxyFactory

pytestmark = pytest.mark.django_db
RUNS = "/api/workflows/gz-decals-dr5/training-runs/"


@pytest.fixture
def admin_client():
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678"))
    return client


def test_volunteers_cannot_start_runs(decals):
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_user("vol", "vol@example.org", "pw-12345678"))
    assert client.post(RUNS, {}, format="json").status_code == 403
    assert APIClient().get(RUNS).status_code == 403
    assert not TrainingRun.objects.exists()


def test_admin_starts_polls_and_cancels_a_run(admin_client, decals, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as dispatched:
        response = admin_client.post(RUNS, {"hyperparameters": {"epochs": 3}}, format="json")
    assert response.status_code == 201, response.json()
    run = response.json()
    assert (run["status"], run["trigger"], run["workflow"]) == ("queued", "api", "gz-decals-dr5")
    assert run["hyperparameters"]["overrides"]["epochs"] == 3
    assert len(dispatched) == 1  # the training task is sent once the run is committed

    again = admin_client.post(RUNS, {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "training_run_active"
    assert admin_client.get(f"/api/training-runs/{run['id']}/").json()["status"] == "queued"
    assert [r["id"] for r in admin_client.get(RUNS).json()["results"]] == [run["id"]]

    cancelled = admin_client.post(f"/api/training-runs/{run['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert admin_client.post(f"/api/training-runs/{run['id']}/cancel/").status_code == 409


def test_bad_hyperparameters_are_rejected_naming_the_field(admin_client, decals):
    response = admin_client.post(RUNS, {"hyperparameters": {"epochs": 0}}, format="json")
    assert response.status_code == 400
    assert "epochs" in response.json()["hyperparameters"]
    assert not TrainingRun.objects.exists()


def test_unknown_workflow_is_404(admin_client, decals):
    assert admin_client.post("/api/workflows/nope/training-runs/", {}, format="json").status_code == 404


def test_admin_starts_a_head_refresh_run_of_its_own_kind(admin_client, decals, django_capture_on_commit_callbacks):
    from retraining.models import GalaxyEmbedding, ModelVersion

    no_encoder = admin_client.post(RUNS, {"kind": "head"}, format="json")
    assert no_encoder.status_code == 409 and no_encoder.json()["code"] == "no_encoder_embeddings"
    assert no_encoder.json()["field"] == "workflow"

    galaxy = GalaxyFactory()
    encoder = ModelVersion.objects.create(workflow=decals, number=1, checkpoint="models/x.pt", checkpoint_sha256="0" * 64,
                                          tree_hash=decals.tree_hash, answer_columns=[], predictions_complete=True,
                                          is_active=True)
    GalaxyEmbedding.objects.create(model_version=encoder, galaxy=galaxy, vector=b"\0\0" * 4)
    with django_capture_on_commit_callbacks(execute=False) as dispatched:
        response = admin_client.post(RUNS, {"kind": "head", "head": {"members": 3}}, format="json")
    assert response.status_code == 201, response.json()
    run = response.json()
    assert (run["kind"], run["init_model_version"], run["hyperparameters"]["head"]["members"]) == ("head", encoder.pk, 3)
    assert len(dispatched) == 1
    again = admin_client.post(RUNS, {"kind": "head"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "training_run_active"
    assert admin_client.post(RUNS, {}, format="json").status_code == 201  # an encoder run beside it
    bad = admin_client.post(RUNS, {"kind": "head", "head": {"members": 0}}, format="json")
    assert bad.status_code == 400 and "members" in bad.json()["head"]
    kinds = sorted(r["kind"] for r in admin_client.get(RUNS).json()["results"])
    assert kinds == ["encoder", "head"]
    version = admin_client.get(f"/api/workflows/{decals.slug}/model-versions/").json()["results"][0]
    assert (version["kind"], version["encoder"]) == ("encoder", None)
