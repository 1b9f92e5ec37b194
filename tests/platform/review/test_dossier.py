"""The galaxy dossier: votes, posterior chart, predictions across versions, pseudonymous
classifications, expert actions."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

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
