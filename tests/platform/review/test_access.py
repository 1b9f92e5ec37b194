"""Every workbench page and endpoint × every role: scientists and admins in; volunteers and
anonymous visitors out (403 JSON from the API; sign-in redirect or 403 from the pages)."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from classifications.models import Classification
from classifier.live_head import embedding_bytes
from retraining.models import GalaxyEmbedding
from review.access import SCIENTIST_GROUP, can_use_workbench, grant_scientist
from review.models import ExportJob, Flag
from review.selectors import pseudonym
from tests.platform.factories import decals_smooth_path

from .conftest import WORKFLOW, make_version, vote


def _embed(scored) -> None:
    """Embeddings for the scored galaxies, so "more like this" has neighbours to show."""
    vectors = embedding_bytes(np.random.default_rng(0).normal(size=(len(scored["galaxies"]), 8)))
    GalaxyEmbedding.objects.bulk_create([GalaxyEmbedding(model_version=scored["version"], galaxy=g, vector=v)
                                         for g, v in zip(scored["galaxies"], vectors)])


ALLOWED = {"anonymous": False, "volunteer": False, "scientist": True, "admin": True}
G = "JREVIEW03"


def _export(scored, users) -> ExportJob:
    """A finished export with a file in the storage, to download."""
    job = ExportJob.objects.create(workflow=scored["version"].workflow, requested_by=users["scientist"], format="csv",
                                   model_version=scored["version"], state=ExportJob.State.SUCCEEDED, rows=1)
    job.file.save("access.csv", ContentFile(b"id_str\nJREVIEW03\n"))
    return job


def _endpoints(flag_id: int, export_id: int):
    """(method, url, body, success status) of every workbench API endpoint."""
    voted = Classification.objects.select_related("workflow", "galaxy").order_by("id").first()
    return [
        ("get", reverse("review-queue", args=[WORKFLOW]), None, 200),
        ("post", reverse("review-scores-refresh", args=[WORKFLOW]), None, 202),
        ("get", reverse("review-expert-classification-list", args=[WORKFLOW]), None, 200),
        ("get", reverse("review-dossier", args=[WORKFLOW, G]), None, 200),
        ("post", reverse("review-expert-classification", args=[WORKFLOW, G]),
         {"annotations": [{"question": "smooth-or-featured", "answer": "smooth"},
                          {"question": "how-rounded", "answer": "round"}, {"question": "merging", "answer": "none"}]},
         201),
        ("post", reverse("review-retirement", args=[WORKFLOW, G]), {"retire": True, "reason": "artefact"}, 201),
        ("get", reverse("review-flags", args=[G]), None, 200),
        ("post", reverse("review-flags", args=[G]), {"kind": "interesting", "comment": "ring?"}, 201),
        ("post", reverse("review-flag-resolve", args=[flag_id]), {"resolution": "fine"}, 200),
        ("get", reverse("review-cone") + "?ra=13&dec=0&radius=1", None, 200),
        ("get", reverse("review-models", args=[WORKFLOW]), None, 200),
        ("post", reverse("review-shadow-ban", args=[voted.workflow.slug, voted.galaxy.id_str]),
         {"pseudonym": pseudonym(voted.volunteer_key), "reason": "burst"}, 201),
        ("post", reverse("review-shadow-ban-lift", args=[voted.workflow.slug, voted.galaxy.id_str]),
         {"pseudonym": pseudonym(voted.volunteer_key)}, 200),
        ("get", reverse("review-similar", args=[WORKFLOW, G]), None, 200),
        ("get", reverse("review-exports", args=[WORKFLOW]), None, 200),
        ("post", reverse("review-exports", args=[WORKFLOW]), {"format": "csv"}, 202),
        ("get", reverse("review-export", args=[export_id]), None, 200),
        ("get", reverse("review-export-download", args=[export_id]), None, 200),
        ("get", reverse("review-expert-agreement", args=[WORKFLOW]), None, 200),
        ("post", reverse("review-model-activate", args=[WORKFLOW, 2]), None, 200),  # last: it switches the model
    ]


PAGES = [
    (lambda: reverse("workbench"), 302),
    (lambda: reverse("workbench-queue", args=[WORKFLOW]), 200),
    (lambda: reverse("workbench-dossier", args=[WORKFLOW, G]), 200),
    (lambda: reverse("workbench-posterior", args=[WORKFLOW, G]), 200),
    (lambda: reverse("workbench-models", args=[WORKFLOW]), 200),
    (lambda: reverse("workbench-models-csv", args=[WORKFLOW]), 200),
    (lambda: reverse("workbench-exports", args=[WORKFLOW]), 200),
    (lambda: reverse("workbench-learning-curves", args=[WORKFLOW]) + "?v=1", 200),
]


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(ALLOWED))
def test_every_api_endpoint_by_role(role, users, scored, monkeypatch):
    from review import tasks

    monkeypatch.setattr(tasks.refresh_review_scores, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(tasks.run_export, "apply_async", lambda *args, **kwargs: None)
    _embed(scored)
    export = _export(scored, users)
    flag = Flag.objects.create(galaxy=scored["galaxies"][3], kind="artifact", created_by=users["admin"])
    vote(scored["version"].workflow, scored["galaxies"][3], decals_smooth_path(), count=1)
    make_version(scored["version"].workflow, number=2, active=False)
    client = APIClient()
    if users[role] is not None:
        client.force_authenticate(users[role])
    for method, url, body, success in _endpoints(flag.pk, export.pk):
        response = getattr(client, method)(url, body, format="json")
        if ALLOWED[role]:
            assert response.status_code == success, (url, response.content)
        else:
            assert response.status_code == 403, (role, url)
            assert response["Content-Type"].startswith("application/json")
            assert "detail" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(ALLOWED))
def test_every_page_by_role(role, users, scored, client):
    if users[role] is not None:
        client.force_login(users[role])
    for url, success in PAGES:
        response = client.get(url())
        if ALLOWED[role]:
            assert response.status_code == success, url()
        elif role == "anonymous":
            assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
        else:
            assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(ALLOWED))
def test_activating_from_the_dashboard_by_role(role, users, scored, client):
    waiting = make_version(scored["version"].workflow, number=2, active=False)
    if users[role] is not None:
        client.force_login(users[role])
    response = client.post(reverse("workbench-activate", args=[WORKFLOW, 2]))
    waiting.refresh_from_db()
    if ALLOWED[role]:
        assert response.status_code == 302 and response["Location"] == reverse("workbench-models", args=[WORKFLOW])
        assert waiting.is_active and waiting.activated_by == users[role]
    else:
        assert response.status_code == (302 if role == "anonymous" else 403)
        assert not waiting.is_active
    assert client.get(reverse("workbench-activate", args=[WORKFLOW, 2])).status_code in (302, 403, 405)


@pytest.mark.django_db
def test_navigation_shows_the_workbench_only_to_its_users(users, client):
    client.force_login(users["volunteer"])
    assert b">Workbench<" not in client.get("/").content
    client.force_login(users["scientist"])
    assert b">Workbench<" in client.get("/").content


@pytest.mark.django_db
def test_grant_scientist_command(users, capsys):
    volunteer = users["volunteer"]
    assert not can_use_workbench(volunteer)
    call_command("grant_scientist", "VOL@example.org")
    volunteer.refresh_from_db()
    assert volunteer.groups.filter(name=SCIENTIST_GROUP).exists()
    assert "is now a scientist" in capsys.readouterr().out
    assert grant_scientist(email="vol@example.org") is False
    with pytest.raises(CommandError, match="no account"):
        call_command("grant_scientist", "nobody@example.org")


@pytest.mark.django_db
def test_staff_alone_grants_nothing_the_permission_does(users):
    from django.contrib.auth.models import Permission

    staff = get_user_model().objects.create_user("clerk", "clerk@example.org", "pw-12345678", is_staff=True)
    assert not can_use_workbench(staff)
    staff.user_permissions.add(Permission.objects.get(codename="use_workbench"))
    staff = get_user_model().objects.get(pk=staff.pk)  # a fresh permission cache
    assert can_use_workbench(staff)


@pytest.mark.django_db
def test_the_migrated_group_holds_the_permission(db):
    from django.contrib.auth.models import Group

    assert Group.objects.get(name=SCIENTIST_GROUP).permissions.filter(codename="use_workbench").exists()


@pytest.mark.django_db
def test_inactive_scientist_is_refused(users):
    scientist = users["scientist"]
    scientist.is_active = False
    assert not can_use_workbench(scientist)
