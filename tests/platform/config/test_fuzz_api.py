"""Schema fuzzing (schemathesis) of every operation in /api/schema/, in-process through the
WSGI app: generated valid and invalid requests, anonymous and with a volunteer's and an admin's
token, with all of schemathesis' checks (no 5xx, status codes, content types and bodies as the
schema says, invalid input refused). Derandomised, so a run is repeatable and bounded."""

import os
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import ignored_auth

from classifications.services import Submission, Volunteer, submit_classification
from retraining.models import ModelVersion, TrainingRun
from tests.platform.factories import GalaxyFactory, decals_smooth_path
from workflows.models import Workflow
from workflows.shipped import DECALS_DR5

# 8 keeps CI at ~40 s (SQLite) / ~70 s (PostgreSQL) on 2 cores; FUZZ_EXAMPLES=200 for a deep run on demand.
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "8"))
# A schema cannot say that annotations must follow the workflow's decision tree, or that a
# training run needs enough labelled galaxies: schema-valid bodies may get a 400 there.
BUSINESS_RULE_STATUSES = ["2xx", "400", "401", "403", "404", "409", "429"]
# Valid requests hold no NUL character: the API refuses NUL anywhere in a body, path or query
# (no database text column can store one) with a 400, a rule JSON Schema cannot state for every
# string; the invalid-input cases still send NULs and must get that 400.
CONFIG = schemathesis.Config.from_dict({
    "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION, "deterministic": True,
                   "allow-x00": False},
    "operations": [{"include-path": path, "checks": {"positive_data_acceptance": {
        "expected-statuses": BUSINESS_RULE_STATUSES}}}
        for path in ("/api/classifications/", "/api/classifications/batch/", "/api/workflows/{slug}/training-runs/",
                     # The workbench: answer columns of the active model's tree, expert labels through
                     # the tree, a reason that is not blank.
                     "/api/review/workflows/{slug}/queue/",
                     "/api/review/workflows/{slug}/galaxies/{id_str}/expert-classification/",
                     "/api/review/workflows/{slug}/galaxies/{id_str}/retirement/",
                     # activating needs a version with complete predictions of the current tree
                     "/api/review/workflows/{slug}/models/{number}/activate/")],
})


def load_schema():
    from config.wsgi import application

    return schemathesis.openapi.from_wsgi("/api/schema/", application, config=CONFIG)


schema = load_schema()  # the schema view reads no database, so it can load at collection


@pytest.fixture
def _keep_test_connection():
    """The app is called directly, not through Django's test client, which is what normally stops
    each request's end from closing the test's (transactional) database connection."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(params=["anonymous", "volunteer", "admin"])
def auth_headers(request, db, _keep_test_connection) -> dict[str, str]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from classifications.services import ensure_subject_statuses

    users = get_user_model()
    volunteer = users.objects.create_user("fuzz-volunteer", "v@example.invalid")  # no password: no hashing
    admin = users.objects.create_superuser("fuzz-admin", "a@example.invalid", None)
    galaxies = [GalaxyFactory() for _ in range(3)]
    ensure_subject_statuses()
    submit_classification(submission=Submission(workflow_slug=DECALS_DR5, galaxy_id_str=galaxies[0].id_str,
                                                annotations=decals_smooth_path(), idempotency_key=uuid.uuid4().hex),
                          volunteer=Volunteer.for_user(volunteer.pk))
    # A run and a model version, so their bodies are checked against the schema too.
    workflow = Workflow.objects.get(slug=DECALS_DR5)
    TrainingRun.objects.create(workflow=workflow, workflow_version=workflow.version, tree_hash=workflow.tree_hash,
                               trigger="api", status=TrainingRun.Status.QUEUED)
    ModelVersion.objects.create(workflow=workflow, number=1, checkpoint="models/x.pt", checkpoint_sha256="0" * 64,
                                tree_hash=workflow.tree_hash, answer_columns=[])
    user = {"anonymous": None, "volunteer": volunteer, "admin": admin}[request.param]
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"} if user else {}


@pytest.mark.slow
@schema.parametrize()
@settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES_PER_OPERATION)
def test_api_answers_every_generated_request_as_its_schema_says(case, auth_headers):
    # ignored_auth re-sends with broken credentials of the schema's first scheme (the session
    # cookie) while the token given here stays valid: it runs for anonymous requests only.
    case.call_and_validate(headers=auth_headers, excluded_checks=[ignored_auth] if auth_headers else [])
