"""Who may do what: every API endpoint and page against every role, from one table.

Roles grant by permission, never by ``is_staff`` alone: a staff account without permissions
may open the admin site but not start or cancel runs or activate models. To add a role (e.g.
a scientist), add it to ROLES and give it a status in every row of the table (the test checks
that no row misses a role)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from classifications.services import Submission, Volunteer, ensure_subject_statuses, submit_classification
from retraining.models import ModelVersion, TrainingRun
from tests.platform.factories import GalaxyFactory, decals_smooth_path
from workflows.models import Workflow
from workflows.shipped import DECALS_DR5

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "volunteer", "staff", "admin")


def make_user(role: str):
    users = get_user_model()
    if role == "anonymous":
        return None
    if role == "admin":
        return users.objects.create_superuser("admin", "admin@example.invalid", None)
    return users.objects.create_user(role, f"{role}@example.invalid", is_staff=role == "staff")


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # may name {run}, {version}, {classification}, {galaxy}
    expected: dict[str, int]
    body: dict | None = None


def every(status: int) -> dict[str, int]:
    return dict.fromkeys(ROLES, status)


# Anonymous API requests that need a login get 403 (session auth sends no WWW-Authenticate).
ADMIN_ONLY = {"anonymous": 403, "volunteer": 403, "staff": 403}
TABLE = [
    # Volunteer pages and the public API: open to all.
    Row("GET", "/", every(200)),
    Row("GET", "/classify/", every(200)),
    Row("GET", "/me/", every(200)),
    Row("GET", "/accounts/login/", {**every(200), "volunteer": 302, "staff": 302, "admin": 302}),
    Row("GET", "/accounts/signup/", {**every(200), "volunteer": 302, "staff": 302, "admin": 302}),
    Row("GET", "/api/docs/", every(200)),
    Row("GET", "/api/schema/", every(200)),
    Row("GET", "/api/workflows/", every(200)),
    Row("GET", f"/api/workflows/{DECALS_DR5}/", every(200)),
    Row("GET", f"/api/workflows/{DECALS_DR5}/next/", every(200)),
    Row("GET", "/api/galaxies/", every(200)),
    Row("GET", "/api/galaxies/{galaxy}/", every(200)),
    Row("GET", "/api/site/stats/", every(200)),
    Row("GET", f"/api/site/field-guide/{DECALS_DR5}/", every(200)),
    Row("GET", "/api/me/classifications/", every(200)),
    # Anonymous votes need a server-issued identity first (the anonymous role here has none).
    Row("POST", "/api/volunteers/anonymous/", {**every(200), "anonymous": 201}),
    Row("POST", "/api/classifications/", {**every(201), "anonymous": 403}, body={"workflow": DECALS_DR5, "galaxy": "{galaxy}",
                                                         "annotations": decals_smooth_path()}),
    # Someone else's classification: nobody may touch it, the admin included (it is not theirs).
    Row("PUT", "/api/me/classifications/{classification}/favourite/", every(404), body={"is_favourite": True}),
    # The admin site: staff may enter; the retraining pages need the model's permissions.
    Row("GET", "/admin/", {"anonymous": 302, "volunteer": 302, "staff": 200, "admin": 200}),
    Row("GET", "/admin/retraining/trainingrun/", {"anonymous": 302, "volunteer": 302, "staff": 403, "admin": 200}),
    # The retraining API: by model permission.
    Row("GET", f"/api/workflows/{DECALS_DR5}/training-runs/", {**ADMIN_ONLY, "admin": 200}),
    # A run is already queued (one at a time): refused as a conflict, past the permission check.
    Row("POST", f"/api/workflows/{DECALS_DR5}/training-runs/", {**ADMIN_ONLY, "admin": 409}, body={}),
    Row("GET", "/api/training-runs/{run}/", {**ADMIN_ONLY, "admin": 200}),
    Row("POST", "/api/training-runs/{run}/cancel/", {**ADMIN_ONLY, "admin": 200}),
    Row("GET", f"/api/workflows/{DECALS_DR5}/model-versions/", {**ADMIN_ONLY, "admin": 200}),
    # Its predictions are not complete, so activation is refused as a conflict, past the permission check.
    Row("POST", "/api/model-versions/{version}/activate/", {**ADMIN_ONLY, "admin": 409}),
]


def test_every_row_names_every_role():
    assert [row.path for row in TABLE if set(row.expected) != set(ROLES)] == []


@pytest.fixture
def objects():
    galaxy = GalaxyFactory()
    ensure_subject_statuses()
    workflow = Workflow.objects.get(slug=DECALS_DR5)
    other = submit_classification(
        submission=Submission(workflow_slug=DECALS_DR5, galaxy_id_str=galaxy.id_str, annotations=decals_smooth_path(),
                              idempotency_key=uuid.uuid4().hex), volunteer=Volunteer.anonymous("someone-else"))
    run = TrainingRun.objects.create(workflow=workflow, workflow_version=workflow.version, tree_hash=workflow.tree_hash,
                                     trigger="api", status=TrainingRun.Status.QUEUED)
    version = ModelVersion.objects.create(workflow=workflow, number=1, checkpoint="models/x.pt",
                                          checkpoint_sha256="0" * 64, tree_hash=workflow.tree_hash, answer_columns=[])
    return {"galaxy": galaxy.id_str, "classification": other.classification.pk, "run": run.pk, "version": version.pk}


def fill(value, objects):
    if isinstance(value, str):
        return value.format(**objects)
    if isinstance(value, dict):
        return {key: fill(item, objects) for key, item in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_access_the_table_gives_it(role, objects):
    user = make_user(role)
    seen, expected = {}, {}
    for row in TABLE:
        client = APIClient()
        if user is not None:
            client.force_login(user)
        body = fill(row.body, objects)
        if body is not None and row.path == "/api/classifications/":
            body["idempotency_key"] = uuid.uuid4().hex
        response = client.generic(row.method, fill(row.path, objects),
                                  **({"data": json.dumps(body), "content_type": "application/json"}
                                     if body is not None else {}))
        seen[f"{row.method} {row.path}"] = response.status_code
        expected[f"{row.method} {row.path}"] = row.expected[role]
    assert seen == expected


def test_a_staff_account_given_the_permissions_may_start_runs(objects):
    staff = make_user("staff")
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_trainingrun", "add_trainingrun"]))
    client = APIClient()
    client.force_login(staff)
    assert client.get(f"/api/workflows/{DECALS_DR5}/training-runs/").status_code == 200
    assert client.post(f"/api/training-runs/{objects['run']}/cancel/").status_code == 403
    TrainingRun.objects.all().delete()
    assert client.post(f"/api/workflows/{DECALS_DR5}/training-runs/", {}, format="json").status_code == 201


def test_public_galaxy_payloads_carry_no_internal_metadata():
    galaxy = GalaxyFactory(metadata={"redshift": 0.05, "_import": {"sources": ["secret-path.fits"]},
                                     "expected_answers": {DECALS_DR5: decals_smooth_path()},
                                     "simulation": {"bar": 0.9}})
    ensure_subject_statuses()
    client = APIClient()
    detail = client.get(f"/api/galaxies/{galaxy.id_str}/").json()
    listed = client.get("/api/galaxies/").json()["results"][0]
    queued = client.get(f"/api/workflows/{DECALS_DR5}/next/").json()["results"][0]["galaxy"]
    assert detail["metadata"] == {"redshift": 0.05}
    for body in (detail, listed, queued):
        text = str(body)
        assert "secret-path" not in text and "expected_answers" not in text and "simulation" not in text
