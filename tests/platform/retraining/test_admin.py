"""Admin: the "Retrain" button and workflow action, prediction pages, roll-back messages, read-only tallies."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from classifications.models import SubjectStatus
from retraining.models import ModelVersion, Prediction, TrainingRun
from retraining.services import activate_model_version
from tests.platform.retraining.conftest import make_galaxies, seed_votes

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_browser():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678"))
    return client


def test_run_list_has_a_retrain_button_that_queues_a_run(admin_browser, decals):
    page = admin_browser.get("/admin/retraining/trainingrun/")
    assert page.status_code == 200 and b">Retrain</button>" in page.content
    response = admin_browser.post("/admin/retraining/trainingrun/retrain/", {"workflow": decals.pk, "full_retrain": "on"})
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert (run.workflow, run.trigger, run.full_retrain, run.status) == (decals, "admin", True, "queued")
    assert run.triggered_by.username == "boss"


def test_retrain_now_action_on_workflows(admin_browser, decals):
    response = admin_browser.post("/admin/workflows/workflow/", {"action": "retrain_now", "_selected_action": [decals.pk]})
    assert response.status_code == 302
    assert TrainingRun.objects.get().workflow == decals
    # A second click while the run is queued reports the conflict instead of queueing another.
    admin_browser.post("/admin/workflows/workflow/", {"action": "retrain_now", "_selected_action": [decals.pk]},
                       follow=True)
    assert TrainingRun.objects.count() == 1
    admin_browser.post("/admin/retraining/trainingrun/", {"action": "cancel_runs",
                                                         "_selected_action": [TrainingRun.objects.get().pk]})
    assert TrainingRun.objects.get().status == "cancelled"


def _version(workflow, number, galaxies, *, active=False):
    columns = list(workflow.decision_tree.answer_columns)
    version = ModelVersion.objects.create(
        workflow=workflow, number=number, checkpoint=f"models/v{number}.pt", checkpoint_sha256="0" * 64,
        tree_hash=workflow.tree_hash, answer_columns=columns, metrics={"rmse": 0.2}, predictions_complete=True)
    for i, galaxy in enumerate(galaxies):
        fractions = [0.9 if c == "smooth-or-featured_smooth" else 0.05 for c in columns]
        Prediction.objects.create(model_version=version, galaxy=galaxy, fractions=fractions,
                                  lower=[max(f - 0.1, 0) for f in fractions], upper=[min(f + 0.1, 1) for f in fractions],
                                  acquisition=float(number * 10 + i), entropy=1.0)
    if active:
        activate_model_version(model_version_id=version.pk)
    return version


def test_prediction_page_is_titled_by_galaxy_and_version_with_a_labelled_table(admin_browser, decals):
    galaxy = make_galaxies(1)[0]
    prediction = _version(decals, 1, [galaxy], active=True).predictions.get()
    page = admin_browser.get(f"/admin/retraining/prediction/{prediction.pk}/change/").content.decode()
    assert f"<title>{galaxy.id_str} by {decals.slug} model v1" in page
    assert re.search(rf"<h1>{re.escape(galaxy.id_str)}: prediction of {decals.slug} model v1</h1>", page)
    assert "<th scope='col'>interval</th>" in page or "<th scope=\"col\">interval</th>" in page
    smooth_row = re.search(r"<th scope=.row.>Is the galaxy simply smooth and rounded.*?</tr>", page, re.S).group(0)
    assert "Smooth" in smooth_row and "90%" in smooth_row and "80% – 100%" in smooth_row
    assert "[0.9" not in page  # no raw arrays


def test_roll_back_names_both_versions_and_a_no_op_says_so(admin_browser, decals):
    galaxies = make_galaxies(2)
    first = _version(decals, 1, galaxies, active=True)
    _version(decals, 2, galaxies, active=True)
    page = admin_browser.post("/admin/retraining/modelversion/", {"action": "activate", "_selected_action": [first.pk]},
                              follow=True).content.decode()
    assert "Rolled back gz-decals-dr5 from v2 to v1: v1 is now the active model" in page
    assert ModelVersion.objects.get(is_active=True) == first
    page = admin_browser.post("/admin/retraining/modelversion/", {"action": "activate", "_selected_action": [first.pk]},
                              follow=True).content.decode()
    assert "model v1 is already the active version" in page


def test_subject_status_tallies_are_view_only(admin_browser, decals):
    galaxy = make_galaxies(1)[0]
    seed_votes(decals, [galaxy], volunteers=2)
    status = SubjectStatus.objects.get(workflow=decals, galaxy=galaxy)
    url = f"/admin/classifications/subjectstatus/{status.pk}/change/"
    page = admin_browser.get(url).content.decode()
    assert "<th scope='row'>Is the galaxy simply smooth and rounded" in page and 'name="vote_counts"' not in page
    assert admin_browser.post(url, {"classification_count": 99, "vote_counts": "{}"}).status_code == 403
    status.refresh_from_db()
    assert status.classification_count == 2
    assert admin_browser.get("/admin/classifications/subjectstatus/add/").status_code == 403


def test_run_and_version_pages_show_tables_not_raw_json(admin_browser, decals):
    galaxies = make_galaxies(2)
    version = _version(decals, 1, galaxies, active=True)
    version.metrics = {"n_galaxies": 7, "rmse": 0.1234, "calibration": {"interval": 0.9, "vote_coverage": 0.91},
                       "questions": {"smooth-or-featured": {"n_confident": 5, "accuracy": 0.8, "rmse": 0.11,
                                                            "confusion": [[4, 1], [0, 0]]}}}
    run = TrainingRun.objects.create(
        workflow=decals, workflow_version=decals.version, tree_hash=decals.tree_hash, trigger="admin",
        status="succeeded", stage="done", hyperparameters={"preset": "fast_cpu", "overrides": {"epochs": 2},
                                                          "config": {"epochs": 2, "widths": [8, 16], "lr": 0.003}},
        history=[{"epoch": 1, "train_loss": 9.5, "val_loss": 9.25, "seconds": 1.5}],
        prediction_chunks=[[1, 5], [6, 9]], prediction_chunks_done=[0, 1], gate_decision="awaiting_review",
        gate_reason="worse", gate_champion=version, gate_challenger_loss=9.9, gate_champion_loss=9.1, gate_galaxies=7)
    version.run = run
    version.save()
    page = admin_browser.get(f"/admin/retraining/trainingrun/{run.pk}/change/").content.decode()
    assert "<td>widths</td><td>8, 16</td>" in page and "<td>epochs</td><td>2</td><td>override</td>" in page
    assert "<td>1</td><td>9.5000</td><td>9.2500</td>" in page and "2 of 2 done" in page
    assert "Awaiting review" in page and "<td>champion</td><td>v1</td>" in page and "9.9000" in page
    assert "[8, 16]" not in page and "[[1, 5]" not in page and '"epochs"' not in page
    page = admin_browser.get(f"/admin/retraining/modelversion/{version.pk}/change/").content.decode()
    assert "<td>fraction RMSE</td><td>0.1234</td>" in page and "<td>smooth-or-featured</td><td>5</td>" in page
    assert "[[4, 1]" not in page and '"rmse"' not in page and "[&quot;" not in page
