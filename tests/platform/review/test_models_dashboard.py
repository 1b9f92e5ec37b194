"""The model dashboard: versions with hold-out figures, two side by side, learning curves."""

import csv
import io

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


def test_dashboard_shows_each_questions_confusion_matrix_and_a_csv(users, versions, client):
    # Confident volunteers (all votes on one answer) on the first question of v2's hold-out.
    tree, schema = versions[1].workflow.decision_tree, Schema(versions[1].workflow.decision_tree)
    counts = np.zeros((30, tree.n_answers))
    counts[np.arange(30), np.arange(30) % 3] = 10
    rng = np.random.default_rng(1)
    versions[1].metrics = evaluate(rng.gamma(5.0, 1.0, (30, 3, tree.n_answers)) + 0.1, counts, schema)
    versions[1].save()
    client.force_login(users["scientist"])
    html = client.get(reverse("workbench-models", args=[WORKFLOW]), {"a": 2}).content.decode()
    first = versions[1].metrics["questions"]["smooth-or-featured"]
    assert sum(map(sum, first["confusion"])) == 30
    row = "".join(f"<td>{n}</td>" for n in first["confusion"][0])
    assert "Confusion matrices: v2" in html and "<caption>smooth-or-featured</caption>" in html
    assert f'<th scope="row">{first["answers"][0]}</th>{row}' in html

    response = client.get(reverse("workbench-models-csv", args=[WORKFLOW]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    tree = versions[0].workflow.decision_tree
    assert len(rows) == 2 * len(tree.questions)
    by_key = {(int(r["version"]), r["question"]): r for r in rows}
    for version in versions:
        for key, figures in version.metrics["questions"].items():
            got = by_key[version.number, key]
            assert int(got["n_confident"]) == figures["n_confident"]
            assert (got["accuracy"] == "") == (figures["accuracy"] is None)
            if figures["accuracy"] is not None:
                assert float(got["accuracy"]) == pytest.approx(figures["accuracy"])
