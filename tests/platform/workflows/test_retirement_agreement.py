"""The workflow's retirement promise (docs/retirement.md, "Which promise"): every question by
default, editable in the admin, shown by the API and read by the submit path's settings query."""

import json

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from workflows.models import Workflow
from workflows.selectors import workflow_settings
from workflows.shipped import DECALS_DR5

pytestmark = pytest.mark.django_db


def test_a_workflow_promises_every_question_unless_the_project_chooses_otherwise():
    assert Workflow.objects.get(slug=DECALS_DR5).retirement_agreement == Workflow.RetirementAgreement.EVERY_QUESTION


def test_the_admin_edits_the_promise_and_the_api_and_the_submit_path_see_it(client, django_assert_num_queries):
    workflow = Workflow.objects.get(slug=DECALS_DR5)
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678"))
    url = f"/admin/workflows/workflow/{workflow.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and b'name="retirement_agreement"' in page.content
    versions = list(workflow.versions.values_list("pk", flat=True))
    form = {"slug": workflow.slug, "name": workflow.name, "description": workflow.description,
            "tree": json.dumps(workflow.tree), "retirement_count": 30, "random_fraction": workflow.random_fraction,
            "early_retirement": "on", "retirement_agreement": "majority-path", "is_active": "on",
            "versions-TOTAL_FORMS": len(versions), "versions-INITIAL_FORMS": len(versions),
            "versions-MIN_NUM_FORMS": 0, "versions-MAX_NUM_FORMS": 1000}
    for i, pk in enumerate(versions):
        form |= {f"versions-{i}-id": pk, f"versions-{i}-workflow": workflow.pk}
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    workflow.refresh_from_db()
    assert (workflow.early_retirement, workflow.retirement_agreement) == (True, "majority-path")
    assert b"majority path only" in client.get("/admin/workflows/workflow/").content

    body = APIClient().get(f"/api/workflows/{DECALS_DR5}/").json()
    assert (body["early_retirement"], body["retirement_agreement"]) == (True, "majority-path")
    with django_assert_num_queries(1):  # one narrow query, the promise included (no deferred load)
        assert workflow_settings(slug=DECALS_DR5).retirement_agreement == "majority-path"

    response = client.post(url, form | {"retirement_agreement": "some-questions"})
    assert response.status_code == 200 and b"retirement_agreement" in response.content
    workflow.refresh_from_db()
    assert workflow.retirement_agreement == "majority-path"
