"""The galaxy dossier: votes, posterior chart, predictions across versions, pseudonymous
classifications, expert actions."""

import numpy as np
import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.test import APIClient

from classifier.samples import sample_fraction_bytes
from classifier.schema import Schema
from review import selectors
from review.selectors import pseudonym
from tests.platform.factories import decals_smooth_path

from .conftest import WORKFLOW, make_version, predict, uniform_fractions, vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_versions(scored, workflow):
    older = make_version(workflow, number=0, active=False)
    galaxy = scored["galaxies"][4]
    predict(older, galaxy, fractions=uniform_fractions(workflow, bar_strong=0.9), acquisition=0.33)
    vote(workflow, galaxy, decals_smooth_path(), 2, prefix="secret-session")
    return galaxy


def test_pseudonyms_are_stable_and_hide_the_key():
    assert pseudonym("anon:abc") == pseudonym("anon:abc") != pseudonym("anon:abd")
    assert "abc" not in pseudonym("anon:abc")


def test_dossier_api(users, two_versions):
    client = APIClient()
    client.force_authenticate(users["scientist"])
    body = client.get(reverse("review-dossier", args=[WORKFLOW, two_versions.id_str])).json()
    assert body["classification_count"] == 2
    assert [p["model_version"] for p in body["predictions"]] == [1, 0]
    assert [p["active"] for p in body["predictions"]] == [True, False]
    first = body["votes"][0]
    assert first["question"] == "smooth-or-featured" and first["total"] == 2
    names = {c["pseudonym"] for c in body["classifications"]}
    assert len(names) == 2 and all(n.startswith("volunteer-") for n in names)
    assert "secret-session" not in str(body)


def test_dossier_page_and_chart(client, users, two_versions):
    client.force_login(users["scientist"])
    page = client.get(reverse("workbench-dossier", args=[WORKFLOW, two_versions.id_str]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "v1 (active)" in html and "v0" in html
    assert "secret-session" not in html and "volunteer-" in html
    assert 'data-action="zoom-in"' in html and "workbench/dossier.js" in html
    chart = client.get(reverse("workbench-posterior", args=[WORKFLOW, two_versions.id_str]))
    assert chart["Content-Type"] == "image/svg+xml"
    svg = chart.content.decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "smooth-or-featured" in svg and chart.content == client.get(
        reverse("workbench-posterior", args=[WORKFLOW, two_versions.id_str])).content


def test_the_chart_draws_the_posterior_samples_when_stored(client, users, scored, workflow):
    galaxy, version = scored["galaxies"][5], scored["version"]
    prediction = version.predictions.get(galaxy=galaxy)
    spread = np.clip(np.asarray(prediction.fractions)[None, :] + np.linspace(-0.05, 0.05, 4)[:, None], 0, 1)
    client.force_login(users["scientist"])
    url = reverse("workbench-posterior", args=[WORKFLOW, galaxy.id_str])
    assert "MC-dropout samples" not in client.get(url).content.decode()  # a row stored without samples

    schema = Schema(workflow.decision_tree)
    concentrations = (spread * 50 + 1e-3)[None]  # any concentrations whose sample fractions are ``spread``
    prediction.sample_fractions = sample_fraction_bytes(concentrations, schema)[0]
    prediction.save()
    block = selectors.galaxy_dossier(workflow=workflow, galaxy=galaxy)["active_prediction"]
    answer = block["questions"][0]["answers"][0]
    start, stop = schema.question_slices[0]
    expected = concentrations[0, :, 0] / concentrations[0, :, start:stop].sum(-1)
    assert answer["samples"] == pytest.approx(expected.tolist(), abs=1e-3)
    cache.clear()  # a stored prediction never changes; the chart's cache keys on its version
    svg = client.get(url).content.decode()
    assert "MC-dropout samples" in svg


def test_expert_label_api_rejects_bad_paths_with_the_rule(users, scored):
    client = APIClient()
    client.force_authenticate(users["scientist"])
    url = reverse("review-expert-classification", args=[WORKFLOW, scored["galaxies"][0].id_str])
    response = client.post(url, {"annotations": [{"question": "smooth-or-featured", "answer": "smooth"}]},
                           format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_annotations" and response.json()["error"]["rule"] == "incomplete"
    response = client.post(url, {"comment": "no answers"}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "annotations"
    response = client.post(reverse("review-expert-classification", args=[WORKFLOW, "NOPE"]),
                           {"annotations": decals_smooth_path()}, format="json")
    assert response.status_code == 404


def test_retirement_api_needs_a_reason(users, scored):
    client = APIClient()
    client.force_authenticate(users["scientist"])
    url = reverse("review-retirement", args=[WORKFLOW, scored["galaxies"][0].id_str])
    response = client.post(url, {"retire": True, "reason": ""}, format="json")
    assert response.status_code == 400 and response.json()["field"] == "reason"
    assert client.post(url, {"retire": True, "reason": "duplicate"}, format="json").status_code == 201
    assert client.post(url, {"retire": True, "reason": "again"}, format="json").status_code == 409
