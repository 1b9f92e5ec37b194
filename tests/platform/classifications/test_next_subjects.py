"""The queue: unretired galaxies the volunteer has not seen, highest priority first, with a
random share; and the API around it (volunteer identity, parameters, inactive workflows)."""

import random
import uuid
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from classifications.models import Classification, SubjectStatus
from classifications.selectors import next_subjects
from classifications.services import Submission, ensure_subject_statuses, submit_classification
from classifications.volunteers import Volunteer
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client
from workflows.models import Workflow

pytestmark = pytest.mark.django_db

N_GALAXIES = 12


@pytest.fixture
def workflow():
    return Workflow.objects.get(slug="gz-decals-dr5")


@pytest.fixture
def galaxies(workflow):
    """Galaxies whose priority falls with their index: galaxies[0] is the most wanted."""
    galaxies = GalaxyFactory.create_batch(N_GALAXIES)
    ensure_subject_statuses(workflow=workflow)
    for rank, galaxy in enumerate(galaxies):
        SubjectStatus.objects.filter(workflow=workflow, galaxy=galaxy).update(priority=100 - rank)
    return galaxies


def ids(items) -> list[int]:
    return [item.galaxy_id for item in items]


def classify(workflow, galaxy, volunteer: Volunteer) -> None:
    submit_classification(submission=Submission(workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str,
                                                annotations=decals_smooth_path(), idempotency_key=uuid.uuid4().hex),
                          volunteer=volunteer)


def test_without_random_share_the_queue_is_the_top_of_the_priority_order(workflow, galaxies):
    items = next_subjects(workflow=workflow, volunteer_key="anon:a", limit=5, random_fraction=0.0)
    assert ids(items) == [g.id for g in galaxies[:5]]
    assert {item.selection for item in items} == {Classification.Selection.PRIORITY}


def test_retired_and_already_classified_galaxies_are_never_served(workflow, galaxies):
    volunteer = Volunteer.anonymous("a")
    SubjectStatus.objects.filter(workflow=workflow, galaxy__in=galaxies[:3]).update(retired_at=timezone.now())
    classify(workflow, galaxies[3], volunteer)
    classify(workflow, galaxies[7], volunteer)
    allowed = {g.id for g in galaxies[4:]} - {galaxies[7].id}
    rng = random.Random(0)
    for fraction in (0.0, 0.5, 1.0):
        for _ in range(20):
            items = next_subjects(workflow=workflow, volunteer_key=volunteer.key, limit=N_GALAXIES,
                                  random_fraction=fraction, rng=rng)
            assert sorted(ids(items)) == sorted(allowed)
    assert ids(next_subjects(workflow=workflow, volunteer_key=volunteer.key, limit=2, random_fraction=0.0)) == [
        galaxies[4].id, galaxies[5].id]
    other = next_subjects(workflow=workflow, volunteer_key="anon:b", limit=1, random_fraction=0.0)
    assert ids(other) == [galaxies[3].id]


def test_a_volunteer_who_has_seen_everything_gets_nothing(workflow, galaxies):
    volunteer = Volunteer.anonymous("keen")
    for galaxy in galaxies:
        classify(workflow, galaxy, volunteer)
    assert next_subjects(workflow=workflow, volunteer_key=volunteer.key, limit=10, random_fraction=0.5) == []


def test_all_random_share_ignores_priority(workflow, galaxies):
    # A draw picks the first key above a uniform threshold, so each galaxy's chance is the gap
    # below its key: evenly spaced keys make every galaxy equally likely.
    for i, galaxy in enumerate(galaxies):
        SubjectStatus.objects.filter(workflow=workflow, galaxy=galaxy).update(draw_key=(i + 0.5) / len(galaxies))
    rng = random.Random(1)
    firsts = Counter()
    for _ in range(300):
        items = next_subjects(workflow=workflow, volunteer_key="anon:a", limit=1, random_fraction=1.0, rng=rng)
        assert [item.selection for item in items] == [Classification.Selection.RANDOM]
        firsts[items[0].galaxy_id] += 1
    assert set(firsts) == {g.id for g in galaxies}
    assert firsts[galaxies[0].id] < 300 * 0.25


def test_counted_classification_redraws_the_random_key(workflow, galaxies):
    """Redrawing keeps the random share uniform over time instead of favouring galaxies that
    happen to sit after a wide gap in the key order."""
    status = SubjectStatus.objects.get(workflow=workflow, galaxy=galaxies[0])
    classify(workflow, galaxies[0], Volunteer.anonymous("redraw"))
    status_after = SubjectStatus.objects.get(pk=status.pk)
    assert status_after.draw_key != status.draw_key and 0 <= status_after.draw_key < 1
    assert status_after.random_key == status.random_key


def test_random_share_matches_the_fraction(workflow, galaxies):
    rng = random.Random(2)
    selections = Counter()
    for _ in range(200):
        items = next_subjects(workflow=workflow, volunteer_key="anon:a", limit=5, random_fraction=0.3, rng=rng)
        assert len(items) == 5 and len(set(ids(items))) == 5
        selections.update(item.selection for item in items)
        priority_ids = [i.galaxy_id for i in items if i.selection == Classification.Selection.PRIORITY]
        rank = {g.id: r for r, g in enumerate(galaxies)}
        assert priority_ids == sorted(priority_ids, key=rank.get)
    share = selections[Classification.Selection.RANDOM] / sum(selections.values())
    assert abs(share - 0.3) < 0.05, share


def test_workflow_random_fraction_is_the_default(workflow, galaxies):
    Workflow.objects.filter(pk=workflow.pk).update(random_fraction=1.0)
    workflow.refresh_from_db()
    items = next_subjects(workflow=workflow, volunteer_key="anon:a", limit=4, rng=random.Random(3))
    assert {item.selection for item in items} == {Classification.Selection.RANDOM}


def test_excluded_galaxies_are_skipped(workflow, galaxies):
    excluded = [galaxies[0].id, galaxies[2].id]
    items = next_subjects(workflow=workflow, volunteer_key="anon:a", limit=3, random_fraction=0.0,
                          exclude_galaxy_ids=excluded)
    assert ids(items) == [galaxies[1].id, galaxies[3].id, galaxies[4].id]


# ------------------------------------------------------------------------------------- API
def next_ids(client, **params) -> list[str]:
    response = client.get("/api/workflows/gz-decals-dr5/next/", params)
    assert response.status_code == 200, response.content
    return [item["galaxy"]["id_str"] for item in response.json()["results"]]


def post(client, galaxy, key=None):
    return client.post("/api/classifications/", {"workflow": "gz-decals-dr5", "galaxy": galaxy.id_str,
                                                 "annotations": decals_smooth_path(),
                                                 "idempotency_key": key or uuid.uuid4().hex}, format="json")


def test_anonymous_sessions_are_separate_volunteers(workflow, galaxies):
    Workflow.objects.filter(pk=workflow.pk).update(random_fraction=0.0)
    alice, bob = volunteer_client(), volunteer_client()
    top = next_ids(alice, limit=1)[0]
    assert post(alice, galaxies[0]).status_code == 201 and top == galaxies[0].id_str
    assert galaxies[0].id_str not in next_ids(alice, limit=N_GALAXIES)
    assert next_ids(bob, limit=1) == [galaxies[0].id_str]


def test_signed_in_user_is_the_same_volunteer_in_every_session(workflow, galaxies):
    Workflow.objects.filter(pk=workflow.pk).update(random_fraction=0.0)
    user = get_user_model().objects.create_user("vera", password="x-very-long-pw")
    laptop, phone = volunteer_client(), volunteer_client()
    laptop.force_login(user)
    phone.force_login(user)
    assert post(laptop, galaxies[0]).status_code == 201
    assert Classification.objects.get().volunteer_key == f"user:{user.id}"
    assert next_ids(phone, limit=1) == [galaxies[1].id_str]
    assert post(phone, galaxies[0]).json()["counted"] is False


def test_exclude_parameter_over_http(workflow, galaxies):
    Workflow.objects.filter(pk=workflow.pk).update(random_fraction=0.0)
    assert next_ids(volunteer_client(), limit=2, exclude=f"{galaxies[0].id}, {galaxies[1].id}") == [
        galaxies[2].id_str, galaxies[3].id_str]


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "ten"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "51"}, "limit"), ({"limit": "-3"}, "limit"),
    ({"exclude": "1,two"}, "exclude"),
])
def test_bad_queue_parameters_are_400_naming_the_field(galaxies, params, field):
    response = volunteer_client().get("/api/workflows/gz-decals-dr5/next/", params)
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field and body["code"] == "invalid_parameter" and body["message"]


def test_unknown_workflow_is_404():
    response = volunteer_client().get("/api/workflows/no-such-tree/next/")
    assert response.status_code == 404 and response.json()["field"] == "workflow"
    response = volunteer_client().post("/api/classifications/", {"workflow": "no-such-tree", "galaxy": "x",
                                                          "annotations": [], "idempotency_key": "k" * 10},
                                format="json")
    assert response.status_code == 404 and response.json()["code"] == "unknown_workflow"


def test_inactive_workflow_serves_nothing_and_refuses_submissions(workflow, galaxies):
    Workflow.objects.filter(pk=workflow.pk).update(is_active=False)
    response = volunteer_client().get("/api/workflows/gz-decals-dr5/next/")
    assert response.status_code == 200
    assert response.json()["workflow_active"] is False and response.json()["results"] == []
    response = post(volunteer_client(), galaxies[0])
    assert response.status_code == 409 and response.json()["code"] == "workflow_inactive"
    assert Classification.objects.count() == 0


def test_short_idempotency_key_is_400_naming_the_field(galaxies):
    response = post(volunteer_client(), galaxies[0], key="short")
    assert response.status_code == 400 and response.json()["field"] == "idempotency_key"


def test_replay_after_retirement_returns_the_original(workflow, galaxies):
    Workflow.objects.filter(pk=workflow.pk).update(retirement_count=1)
    client = volunteer_client()
    first = post(client, galaxies[0], key="retire-key-1")
    assert first.status_code == 201
    assert SubjectStatus.objects.get(workflow=workflow, galaxy=galaxies[0]).retired_at is not None
    again = post(client, galaxies[0], key="retire-key-1")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert post(client, galaxies[0]).json()["code"] == "subject_retired"
    assert post(volunteer_client(), galaxies[1], key="retire-key-1").json()["code"] == "idempotency_key_reused"


def test_galaxy_detail_has_counts_and_fractions_per_question(workflow, galaxies):
    for n in range(3):
        classify(workflow, galaxies[0], Volunteer.anonymous(f"v{n}"))
    submit_classification(submission=Submission(workflow_slug=workflow.slug, galaxy_id_str=galaxies[0].id_str,
                                                annotations=[{"question": "smooth-or-featured", "answer": "artifact"}],
                                                idempotency_key=uuid.uuid4().hex),
                          volunteer=Volunteer.anonymous("x"))
    body = volunteer_client().get(f"/api/galaxies/{galaxies[0].id_str}/", {"workflow": "gz-decals-dr5"}).json()
    (decals,) = body["workflows"]
    assert decals["classification_count"] == 4
    questions = {q["question"]: q for q in decals["questions"]}
    first = {a["answer"]: (a["count"], a["fraction"]) for a in questions["smooth-or-featured"]["answers"]}
    assert first == {"smooth": (3, 0.75), "featured-or-disk": (0, 0.0), "artifact": (1, 0.25)}
    assert questions["how-rounded"]["total"] == 3
    assert questions["bar"]["total"] == 0 and all(a["fraction"] is None for a in questions["bar"]["answers"])


@pytest.mark.django_db
def test_queue_never_reveals_galaxy_metadata():
    """Simulated galaxies carry their true answers in metadata: the queue must not show them."""
    galaxy = GalaxyFactory(metadata={"expected_answers": {"smooth-or-featured": "smooth"}})
    ensure_subject_statuses()
    response = volunteer_client().get("/api/workflows/gz-decals-dr5/next/?limit=5")
    items = [item for item in response.json()["results"] if item["galaxy"]["id_str"] == galaxy.id_str]
    assert items and "metadata" not in items[0]["galaxy"]
