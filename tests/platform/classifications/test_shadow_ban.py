"""Shadow bans: a banned volunteer's counted votes leave the tallies (recounted in one
transaction, retirement decided again on the votes left), new votes are stored but not
counted, and every answer the volunteer gets is the one an unbanned volunteer would get.
Lifting a ban counts their votes again, as if never banned (tallies = recount)."""

import threading
import time
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from classifications.models import Classification, ShadowBan, SubjectStatus
from classifications.services import (
    Submission,
    ensure_subject_statuses,
    lift_shadow_ban,
    override_retirement,
    shadow_ban,
    submit_classification,
)
from classifications.volunteers import Volunteer
from core.errors import DomainError
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client
from workflows.models import Workflow
from workflows.shipped import DECALS_DR5

pytestmark = pytest.mark.django_db
FEATURED = [{"question": "smooth-or-featured", "answer": "featured-or-disk"},
            {"question": "disk-edge-on", "answer": "yes"},
            {"question": "edge-on-bulge", "answer": "rounded"},
            {"question": "merging", "answer": "none"}]


@pytest.fixture
def decals():
    Workflow.objects.filter(slug=DECALS_DR5).update(retirement_count=3, early_retirement=False)
    return Workflow.objects.get(slug=DECALS_DR5)


@pytest.fixture
def galaxies(decals):
    made = GalaxyFactory.create_batch(4)
    ensure_subject_statuses()
    return made


def vote(galaxy, annotations=None) -> dict:
    return {"workflow": DECALS_DR5, "galaxy": galaxy.id_str, "annotations": annotations or decals_smooth_path(),
            "idempotency_key": uuid.uuid4().hex}


def submit(key: str, galaxy, annotations=None):
    body = vote(galaxy, annotations)
    return submit_classification(submission=Submission(
        workflow_slug=DECALS_DR5, galaxy_id_str=galaxy.id_str, annotations=body["annotations"],
        idempotency_key=body["idempotency_key"]), volunteer=Volunteer(key=key))


def assert_tallies_equal_a_recount_of_unbanned_votes(workflow) -> None:
    """Every status row equals a recount of the counted classifications, none of which is a
    banned volunteer's."""
    banned = set(ShadowBan.objects.values_list("volunteer_key", flat=True))
    counted = Classification.objects.filter(workflow=workflow, counted=True)
    assert not counted.filter(volunteer_key__in=banned).exists()
    tree = workflow.decision_tree
    expected: dict[int, tuple[int, dict]] = {}
    for c in counted:
        count, votes = expected.get(c.galaxy_id, (0, {}))
        for column in tree.path_columns((a["question"], a["answer"]) for a in c.annotations):
            votes[column] = votes.get(column, 0) + 1
        expected[c.galaxy_id] = (count + 1, votes)
    for status in SubjectStatus.objects.filter(workflow=workflow):
        count, votes = expected.get(status.galaxy_id, (0, {}))
        assert (status.classification_count, status.vote_counts) == (count, votes), status.galaxy_id


def status(galaxy) -> SubjectStatus:
    return SubjectStatus.objects.get(galaxy=galaxy, workflow__slug=DECALS_DR5)


def test_a_ban_takes_the_counted_votes_out_and_decides_retirement_again(decals, galaxies):
    g_retired, g_open, g_admin, g_kept = galaxies
    for key in ("anon:a", "anon:b", "anon:x"):
        submit(key, g_retired, FEATURED if key == "anon:x" else None)  # the third vote retires it
    submit("anon:x", g_open, FEATURED)
    submit("anon:a", g_open)
    submit("anon:x", g_admin)
    override_retirement(workflow_id=decals.pk, galaxy_id=g_admin.pk, retire=True)
    for key in ("anon:a", "anon:b", "anon:c"):
        submit(key, g_kept)  # retired without x
    assert status(g_retired).is_retired and status(g_retired).classification_count == 3

    ban = shadow_ban(volunteer_key="anon:x", reason="test")

    assert ban.withdrawn_votes == 3
    assert_tallies_equal_a_recount_of_unbanned_votes(decals)
    # Rule: the votes left decide. Below the count again, so back in the queue.
    assert not status(g_retired).is_retired and status(g_retired).retirement_reason == ""
    assert status(g_retired).vote_counts.get("smooth-or-featured_featured-or-disk", 0) == 0
    assert status(g_open).classification_count == 1
    assert status(g_admin).is_retired and status(g_admin).retirement_reason == "admin"  # an admin's call stays
    assert status(g_kept).is_retired and status(g_kept).retirement_reason == "classification_count"
    assert set(Classification.objects.filter(volunteer_key="anon:x").values_list("counted", "shadowed")) == {
        (False, True)}
    assert shadow_ban(volunteer_key="anon:x").withdrawn_votes == 3  # again: nothing more to withdraw
    assert_tallies_equal_a_recount_of_unbanned_votes(decals)


def test_a_ban_keeps_a_galaxy_retired_when_the_votes_left_still_retire_it(decals, galaxies):
    galaxy = galaxies[0]
    Workflow.objects.filter(pk=decals.pk).update(retirement_count=10)
    submit("anon:x", galaxy)
    for key in ("anon:a", "anon:b", "anon:c"):
        submit(key, galaxy)
    Workflow.objects.filter(pk=decals.pk).update(retirement_count=3)
    override_retirement(workflow_id=decals.pk, galaxy_id=galaxy.pk, retire=False)
    SubjectStatus.objects.filter(pk=status(galaxy).pk).update(retired_at=timezone.now(),
                                                              retirement_reason="classification_count")
    shadow_ban(volunteer_key="anon:x")
    assert status(galaxy).classification_count == 3 and status(galaxy).is_retired


def test_a_banned_volunteer_gets_the_same_answers_and_their_votes_do_not_count(decals, galaxies):
    banned, honest = volunteer_client("x"), volunteer_client("h")
    first = galaxies[0]
    assert banned.post("/api/classifications/", vote(first), format="json").status_code == 201
    shadow_ban(volunteer_key="anon:x")
    before = {g.pk: (status(g).classification_count, status(g).vote_counts) for g in galaxies}

    answers = {}
    for name, client in (("banned", banned), ("honest", honest)):
        new = client.post("/api/classifications/", vote(galaxies[1]), format="json")
        repeat = client.post("/api/classifications/", vote(galaxies[1]), format="json")
        batch = client.post("/api/classifications/batch/", {"classifications": [vote(galaxies[2]), vote(galaxies[2])]},
                            format="json")
        history = client.get("/api/me/classifications/").json()["results"]
        answers[name] = ((new.status_code, new.json()["counted"], sorted(new.json())),
                         (repeat.status_code, repeat.json()["counted"]),
                         [(r["status"], r["classification"]["counted"]) for r in batch.json()["results"]],
                         sorted(c["counted"] for c in history if c["galaxy"] != first.id_str))
    assert answers["banned"] == answers["honest"]
    assert answers["banned"][0][:2] == (201, True) and answers["banned"][1] == (201, False)
    # The banned volunteer's first vote, from before the ban, still reads as counted.
    assert banned.get("/api/me/classifications/").json()["results"][-1]["counted"] is True
    # Only the honest volunteer's votes reached the tallies.
    assert status(galaxies[1]).classification_count == before[galaxies[1].pk][0] + 1
    assert status(galaxies[2]).classification_count == before[galaxies[2].pk][0] + 1
    assert_tallies_equal_a_recount_of_unbanned_votes(decals)
    assert Classification.objects.filter(volunteer_key="anon:x", shadowed=True).count() == 3


def test_only_volunteer_keys_can_be_banned(decals):
    with pytest.raises(DomainError):
        shadow_ban(volunteer_key="sim:1")
    assert not ShadowBan.objects.exists()


def test_the_admin_action_bans_the_selected_classifications_volunteers(decals, galaxies, client):
    submit("anon:x", galaxies[0])
    submit("anon:a", galaxies[0])
    admin = get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678")
    client.force_login(admin)
    chosen = Classification.objects.get(volunteer_key="anon:x")
    response = client.post("/admin/classifications/classification/", {
        "action": "shadow_ban_volunteers", "_selected_action": [chosen.pk]})
    assert response.status_code == 302
    ban = ShadowBan.objects.get()
    assert (ban.volunteer_key, ban.banned_by, ban.withdrawn_votes) == ("anon:x", admin, 1)
    assert status(galaxies[0]).classification_count == 1


def test_staff_without_the_permission_are_not_offered_the_action(decals, galaxies, client):
    submit("anon:x", galaxies[0])
    staff = get_user_model().objects.create_user("staff", "s@example.org", "pw-12345678", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="view_classification"))
    client.force_login(staff)
    page = client.get("/admin/classifications/classification/")
    assert page.status_code == 200 and b"shadow_ban_volunteers" not in page.content
    client.post("/admin/classifications/classification/", {
        "action": "shadow_ban_volunteers", "_selected_action": [Classification.objects.get().pk]})
    assert not ShadowBan.objects.exists()


def test_lifting_a_ban_counts_the_votes_again_as_if_never_banned(decals, galaxies):
    g_retired, g_open, g_while, g_twice = galaxies
    for key in ("anon:a", "anon:b", "anon:x"):
        submit(key, g_retired, FEATURED if key == "anon:x" else None)  # x's vote retires it
    submit("anon:x", g_open, FEATURED)
    shadow_ban(volunteer_key="anon:x")
    assert not status(g_retired).is_retired
    submit("anon:x", g_while, FEATURED)  # cast while banned: shadowed
    submit("anon:x", g_while)  # a repeat: neither
    submit("anon:x", g_twice)
    for key in ("anon:a", "anon:b", "anon:c"):
        submit(key, g_twice)  # retired by honest votes while x's was shadowed
    before = {g.pk: (status(g).classification_count, status(g).is_retired) for g in galaxies}
    assert before == {g_retired.pk: (2, False), g_open.pk: (0, False), g_while.pk: (0, False), g_twice.pk: (3, True)}

    assert lift_shadow_ban(volunteer_key="anon:x") == 4

    assert not ShadowBan.objects.exists()
    assert_tallies_equal_a_recount_of_unbanned_votes(decals)
    assert status(g_retired).is_retired and status(g_retired).retirement_reason == "classification_count"
    assert status(g_retired).vote_counts["smooth-or-featured_featured-or-disk"] == 1
    assert (status(g_open).classification_count, status(g_while).classification_count) == (1, 1)
    assert status(g_twice).classification_count == 4 and status(g_twice).is_retired
    # Exactly what the votes would be had x never been banned: each galaxy's first vote counts.
    assert sorted(Classification.objects.filter(volunteer_key="anon:x").values_list(
        "galaxy_id", "counted", "shadowed")) == sorted([
            (g_retired.pk, True, False), (g_open.pk, True, False), (g_while.pk, True, False),
            (g_while.pk, False, False), (g_twice.pk, True, False)])
    submit("anon:x", galaxies[1])  # a repeat after the lift does not count
    new = GalaxyFactory()
    ensure_subject_statuses(galaxy_ids=[new.pk])
    assert submit("anon:x", new).classification.counted  # a new vote does
    assert_tallies_equal_a_recount_of_unbanned_votes(decals)


def test_a_vote_counted_after_the_lift_keeps_the_shadowed_one_a_repeat(decals, galaxies):
    """The race the lift's order allows: the ban is gone, the volunteer votes on a galaxy whose
    shadowed vote is not restored yet; that one stays a plain repeat (one counted vote per galaxy)."""
    galaxy = galaxies[0]
    submit("anon:x", galaxy)
    shadow_ban(volunteer_key="anon:x")
    ShadowBan.objects.all().delete()  # the lift's first step alone
    submit("anon:x", galaxy, FEATURED)
    ShadowBan.objects.create(volunteer_key="anon:x")
    assert lift_shadow_ban(volunteer_key="anon:x") == 0
    assert sorted(Classification.objects.values_list("counted", "shadowed")) == [(False, False), (True, False)]
    assert_tallies_equal_a_recount_of_unbanned_votes(decals)


def test_lifting_no_ban_is_refused(decals):
    with pytest.raises(DomainError) as raised:
        lift_shadow_ban(volunteer_key="anon:nobody")
    assert (raised.value.status_code, raised.value.code) == (404, "not_shadow_banned")


def test_deleting_a_ban_in_the_admin_lifts_it(decals, galaxies, client):
    submit("anon:x", galaxies[0])
    submit("anon:y", galaxies[1])
    shadow_ban(volunteer_key="anon:x")
    shadow_ban(volunteer_key="anon:y")
    admin = get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678")
    client.force_login(admin)
    ban = ShadowBan.objects.get(volunteer_key="anon:x")
    response = client.post(f"/admin/classifications/shadowban/{ban.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert status(galaxies[0]).classification_count == 1
    response = client.post("/admin/classifications/shadowban/", {
        "action": "delete_selected", "_selected_action": [b.pk for b in ShadowBan.objects.all()], "post": "yes"})
    assert response.status_code == 302 and not ShadowBan.objects.exists()
    assert status(galaxies[1]).classification_count == 1
    assert_tallies_equal_a_recount_of_unbanned_votes(decals)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL: set DATABASE_URL=postgres://... "
                    "(SQLite runs one writer at a time, so the race cannot happen there)")
@pytest.mark.django_db(transaction=True)
def test_a_ban_made_while_the_volunteer_submits_leaves_none_of_their_votes_counted(decals):
    Workflow.objects.filter(pk=decals.pk).update(retirement_count=1000)
    galaxies = GalaxyFactory.create_batch(60)
    ensure_subject_statuses()

    def stuff(offset: int) -> None:
        try:
            for galaxy in galaxies[offset::4]:
                submit("anon:x", galaxy)
                submit(f"anon:h{offset}", galaxy)
        finally:
            connection.close()

    threads = [threading.Thread(target=stuff, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    while Classification.objects.filter(volunteer_key="anon:x").count() < 12:  # mid-burst
        time.sleep(0.005)
    shadow_ban(volunteer_key="anon:x")
    for thread in threads:
        thread.join()
    assert_tallies_equal_a_recount_of_unbanned_votes(decals)
    assert Classification.objects.filter(volunteer_key="anon:x").count() == 60
