"""The model dashboard: versions with hold-out figures, two side by side, learning curves."""

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from classifier.metrics import evaluate
from classifier.schema import Schema
from retraining.models import TrainingRun

from .conftest import WORKFLOW, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(workflow):
    """Two versions whose metrics come from classifier.metrics.evaluate on synthetic posteriors,
    so the dashboard reads the exact structure training stores."""
    tree = workflow.decision_tree
    schema = Schema(tree)
    rng = np.random.default_rng(0)
    made = []
    for number, sharpness in ((1, 2.0), (2, 20.0)):
        counts = rng.integers(0, 12, (40, tree.n_answers)).astype(float)
        concentrations = rng.gamma(sharpness, 1.0, (40, 3, tree.n_answers)) + 0.1
        run = TrainingRun.objects.create(workflow=workflow, workflow_version=workflow.version,
                                         tree_hash=workflow.tree_hash, trigger="admin", status="succeeded",
                                         history=[{"epoch": e, "train_loss": 10.0 / (e + number), "val_loss": 11.0 / (e + 1),
                                                   "seconds": 1.0} for e in range(4)])
        version = make_version(workflow, number=number, active=number == 2)
        version.run, version.metrics = run, evaluate(concentrations, counts, schema)
        version.save()
        made.append(version)
    return made


def test_dashboard_json_and_page(users, versions, client):
    api = APIClient()
    api.force_authenticate(users["scientist"])
    body = api.get(reverse("review-models", args=[WORKFLOW])).json()
    assert [v["number"] for v in body["versions"]] == [2, 1]
    newest = body["versions"][0]
    assert newest["is_active"] and newest["rmse"] == pytest.approx(versions[1].metrics["rmse"])
    assert len(newest["history"]) == 4 and newest["questions"][0]["question"] == "smooth-or-featured"

    client.force_login(users["scientist"])
    html = client.get(reverse("workbench-models", args=[WORKFLOW]), {"a": 2, "b": 1}).content.decode()
    assert "v2 | v1" in html
    assert f"{versions[1].metrics['rmse']:.4f}" in html and f"{versions[0].metrics['rmse']:.4f}" in html
    svg = client.get(reverse("workbench-learning-curves", args=[WORKFLOW]) + "?v=1&v=2").content.decode()
    assert "<svg" in svg and "v1 validation" in svg and "v2 training" in svg
