"""POST /api/classifications/batch/: each item gets the outcome a single submit would give it,
a batch of the wrong shape is refused whole, and concurrent batches keep tallies exact."""

import random
import threading
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from classifications.errors import DomainError, UnknownWorkflow
from classifications.models import Classification, SubjectStatus
from classifications.serializers import MAX_BATCH
from classifications.services import (
    BatchOutcome,
    Submission,
    ensure_subject_statuses,
    submit_classification,
    submit_classifications,
)
from classifications.volunteers import Volunteer
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client
from workflows.models import Workflow

from .test_concurrency import assert_tallies_match_a_recount

BATCH_URL = "/api/classifications/batch/"


def item(galaxy, annotations=None, key=None, workflow="gz-decals-dr5"):
    return {"workflow": workflow, "galaxy": galaxy if isinstance(galaxy, str) else galaxy.id_str,
            "annotations": decals_smooth_path() if annotations is None else annotations,
            "idempotency_key": key or uuid.uuid4().hex}


@pytest.mark.django_db
def test_every_item_gets_the_outcome_a_single_submit_would_give_it():
    client = volunteer_client()
    fresh, retired, replayed = GalaxyFactory.create_batch(3)
    ensure_subject_statuses()
    SubjectStatus.objects.filter(galaxy=retired).update(retired_at=timezone.now())
    assert client.post("/api/classifications/", item(replayed, key="known-key-1"), format="json").status_code == 201
    bad_path = [{"question": "smooth-or-featured", "answer": "smooth"}, {"question": "bar", "answer": "no"}]
    batch = [item(fresh), item(replayed, key="known-key-1"), item(fresh, annotations=bad_path),
             item(retired), item("no-such-galaxy"), item(fresh, workflow="no-such-workflow")]

    response = client.post(BATCH_URL, {"classifications": batch}, format="json")

    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 200, 400, 409, 404, 404]
    assert results[0]["classification"]["galaxy"] == fresh.id_str and results[0]["classification"]["counted"]
    assert results[1]["classification"]["idempotency_key"] == "known-key-1"
    assert results[2]["error"]["code"] == "invalid_annotations" and results[2]["error"]["field"] == "annotations"
    assert results[2]["error"]["error"]["question"] == "bar"
    assert [results[i]["error"]["code"] for i in (3, 4, 5)] == ["subject_retired", "unknown_galaxy",
                                                                "unknown_workflow"]
    assert Classification.objects.count() == 2
    assert SubjectStatus.objects.get(galaxy=fresh, workflow__slug="gz-decals-dr5").classification_count == 1
    assert SubjectStatus.objects.get(galaxy=replayed, workflow__slug="gz-decals-dr5").classification_count == 1


@pytest.mark.django_db
def test_a_key_reused_in_a_batch_for_a_different_classification_is_409_per_item():
    client = volunteer_client()
    galaxy, other = GalaxyFactory.create_batch(2)
    assert client.post("/api/classifications/", item(galaxy, key="batch-reused-1"), format="json").status_code == 201
    cigar = [dict(a, answer="cigar-shaped") if a["question"] == "how-rounded" else a for a in decals_smooth_path()]
    batch = [item(galaxy, annotations=cigar, key="batch-reused-1"), item(other, key="batch-reused-1"),
             item(galaxy, key="batch-reused-1"), item(other, key="batch-new-1"), item(galaxy, annotations=cigar,
                                                                                       key="batch-new-1")]
    results = client.post(BATCH_URL, {"classifications": batch}, format="json").json()["results"]
    # Other answers, other galaxy: 409; same body: replay. A key new to the batch used for two
    # classifications: the first decided (in lock order) is stored, the other is 409.
    assert [r["status"] for r in results[:3]] == [409, 409, 200]
    assert sorted(r["status"] for r in results[3:]) == [201, 409]
    assert {r["error"]["code"] for r in results if r["status"] == 409} == {"idempotency_key_reused"}
    assert Classification.objects.count() == 2


@pytest.mark.django_db
def test_a_batch_counts_like_the_same_submits_one_by_one():
    galaxies = GalaxyFactory.create_batch(4)
    ensure_subject_statuses()
    volunteer = Volunteer.anonymous("batcher")
    # Same galaxy twice (the second is stored, not counted) and the same key twice (a replay).
    submissions = [Submission(workflow_slug="gz-decals-dr5", galaxy_id_str=g.id_str,
                              annotations=decals_smooth_path(), idempotency_key=f"batch-key-{i}")
                   for i, g in enumerate([*galaxies, galaxies[0]])]
    submissions.append(submissions[1])
    outcomes = submit_classifications(submissions=submissions, volunteer=volunteer)

    assert [o.error for o in outcomes] == [None] * 6
    assert [(o.result.created, o.result.classification.counted) for o in outcomes] == [
        (True, True)] * 4 + [(True, False), (False, True)]
    assert outcomes[5].result.classification.id == outcomes[1].result.classification.id
    assert_tallies_match_a_recount(Workflow.objects.get(slug="gz-decals-dr5"))


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field"), [
    ([], "classifications"),
    ({"classifications": "not a list"}, "classifications"),
    ({"classifications": []}, "classifications"),
    ({"classifications": [{"workflow": "gz-decals-dr5"}] * (MAX_BATCH + 1)}, "classifications"),
    ({"classifications": [{"k": 1}]}, "classifications[0].workflow"),
    ("second item has no key", "classifications[1].idempotency_key"),
])
def test_a_batch_of_the_wrong_shape_is_refused_whole(body, field):
    galaxy = GalaxyFactory()
    if body == "second item has no key":
        keyless = item(galaxy)
        del keyless["idempotency_key"]
        body = {"classifications": [item(galaxy), keyless]}
    response = volunteer_client().post(BATCH_URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["field"] == field, response.json()
    assert field in response.json()["message"]
    assert Classification.objects.count() == 0


@pytest.fixture
def open_workflow():
    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    Workflow.objects.filter(pk=workflow.pk).update(retirement_count=1000)
    return workflow


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_over_the_same_galaxies_neither_deadlock_nor_miscount(open_workflow):
    galaxies = GalaxyFactory.create_batch(6)
    ensure_subject_statuses(workflow=open_workflow)
    start = threading.Barrier(6)
    errors = []

    def volunteer_sends_batches(number):
        rng = random.Random(number)
        try:
            start.wait()
            for _ in range(4):
                chosen = rng.sample(galaxies, 5)  # each thread locks in its own random order of arrival
                submissions = [Submission(workflow_slug=open_workflow.slug, galaxy_id_str=g.id_str,
                                          annotations=decals_smooth_path(), idempotency_key=uuid.uuid4().hex)
                               for g in chosen]
                outcomes = submit_classifications(submissions=submissions,
                                                  volunteer=Volunteer.anonymous(f"thread-{number}"))
                errors.extend(o.error for o in outcomes if o.error)
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=volunteer_sends_batches, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads) and errors == []
    assert Classification.objects.count() == 6 * 4 * 5
    assert_tallies_match_a_recount(open_workflow)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_key_taken_by_a_concurrent_request_settles_each_item_on_its_own(open_workflow):
    """Another request inserts key K (for another galaxy) and commits only after the batch has
    tried to insert K too: the batch's transaction fails on the unique key, rolls back, and every
    item is settled on its own — K as a conflict, the others stored once."""
    first, second, other = GalaxyFactory.create_batch(3)
    ensure_subject_statuses(workflow=open_workflow)
    volunteer = Volunteer.anonymous("racer")
    inserted, release = threading.Event(), threading.Event()

    def concurrent_request():
        try:
            with transaction.atomic():
                submit_classification(submission=Submission(workflow_slug=open_workflow.slug,
                                                            galaxy_id_str=other.id_str,
                                                            annotations=decals_smooth_path(),
                                                            idempotency_key="contested-key"),
                                      volunteer=volunteer)
                inserted.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=concurrent_request)
    holder.start()
    assert inserted.wait(timeout=30)
    threading.Timer(1.0, release.set).start()  # commit while the batch waits on the unique index
    outcomes = submit_classifications(volunteer=volunteer, submissions=[
        Submission(workflow_slug=open_workflow.slug, galaxy_id_str=g.id_str, annotations=decals_smooth_path(),
                   idempotency_key=key)
        for g, key in [(first, "free-key-1"), (second, "contested-key")]])
    holder.join(timeout=30)

    assert outcomes[0].result.created and outcomes[1].error.code == "idempotency_key_reused"
    assert sorted(Classification.objects.values_list("idempotency_key", flat=True)) == ["contested-key",
                                                                                         "free-key-1"]
    assert_tallies_match_a_recount(open_workflow)


def _one_by_one(submissions, volunteer):
    """What single submits give the same items, sent in the batch's lock order."""
    outcomes = [None] * len(submissions)
    for index in sorted(range(len(submissions)),
                        key=lambda i: (submissions[i].workflow_slug, submissions[i].galaxy_id_str)):
        s = submissions[index]
        try:
            workflow = Workflow.objects.filter(slug=s.workflow_slug).first()
            if workflow is None:
                raise UnknownWorkflow("", field="workflow")
            outcomes[index] = BatchOutcome(result=submit_classification(submission=Submission(workflow_slug=workflow.slug,
                                                                                              galaxy_id_str=s.galaxy_id_str,
                                                                                              annotations=s.annotations,
                                                                                              idempotency_key=s.idempotency_key),
                                                                        volunteer=volunteer))
        except DomainError as exc:
            outcomes[index] = BatchOutcome(error=exc)
    return outcomes


def _what_happened(store, submissions, volunteer):
    """The outcomes and the database they leave, then rolled back (ids left out: sequences move on)."""
    with transaction.atomic():
        outcomes = store(submissions, volunteer)
        described = [(o.error.code, o.error.field) if o.error else
                     (o.result.created, o.result.classification.idempotency_key,
                      o.result.classification.galaxy.id_str, o.result.classification.counted) for o in outcomes]
        tallies = sorted(SubjectStatus.objects.values_list(
            "workflow__slug", "galaxy__id_str", "vote_counts", "classification_count", "retirement_reason"))
        stored = sorted(Classification.objects.values_list("idempotency_key", "galaxy__id_str", "counted"))
        transaction.set_rollback(True)
    return described, tallies, stored


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(12))
def test_a_random_batch_has_the_outcomes_and_effects_of_the_same_submits_one_by_one(seed):
    """Items repeat galaxies and keys, reuse stored keys, break the tree, name unknown galaxies or
    workflows, touch galaxies without a status row and retire galaxies mid-batch."""
    rng = random.Random(seed)
    decals = Workflow.objects.get(slug="gz-decals-dr5")
    Workflow.objects.filter(pk=decals.pk).update(retirement_count=2)
    Workflow.objects.filter(slug="gz2").update(is_active=seed % 2 == 0)
    galaxies = GalaxyFactory.create_batch(4)
    ensure_subject_statuses(galaxy_ids=[g.id for g in galaxies[:3]])
    volunteer, other = Volunteer.anonymous("batcher"), Volunteer.anonymous("someone-else")
    submit_classification(submission=Submission(workflow_slug=decals.slug, galaxy_id_str=galaxies[0].id_str,
                                                annotations=decals_smooth_path(), idempotency_key="stored-mine"),
                          volunteer=volunteer)
    submit_classification(submission=Submission(workflow_slug=decals.slug, galaxy_id_str=galaxies[1].id_str,
                                                annotations=decals_smooth_path(), idempotency_key="stored-theirs"),
                          volunteer=other)
    bad_path = [{"question": "smooth-or-featured", "answer": "smooth"}]
    submissions = [Submission(
        workflow_slug=rng.choice(["gz-decals-dr5", "gz-decals-dr5", "gz2", "no-such-workflow"]),
        galaxy_id_str=rng.choice([*(g.id_str for g in galaxies), "no-such-galaxy"]),
        annotations=rng.choice([decals_smooth_path(), decals_smooth_path(), bad_path]),
        idempotency_key=rng.choice(["stored-mine", "stored-theirs", *(f"new-{k}" for k in range(8))]))
        for _ in range(rng.randint(1, 14))]

    in_one_batch = _what_happened(
        lambda s, v: submit_classifications(submissions=s, volunteer=v), submissions, volunteer)
    one_by_one = _what_happened(_one_by_one, submissions, volunteer)

    assert in_one_batch == one_by_one


@pytest.mark.django_db
def test_a_batch_costs_the_same_number_of_queries_for_two_votes_as_for_ten(django_assert_num_queries):
    galaxies = GalaxyFactory.create_batch(12)
    ensure_subject_statuses()
    volunteer = Volunteer.anonymous("counting-queries")

    def batch(chosen):
        return [Submission(workflow_slug="gz-decals-dr5", galaxy_id_str=g.id_str, annotations=decals_smooth_path(),
                           idempotency_key=uuid.uuid4().hex) for g in chosen]

    with CaptureQueriesContext(connection) as two:
        submit_classifications(submissions=batch(galaxies[:2]), volunteer=volunteer)
    with django_assert_num_queries(len(two.captured_queries)):
        outcomes = submit_classifications(submissions=batch(galaxies[2:]), volunteer=volunteer)
    assert [o.result.created for o in outcomes] == [True] * 10
    assert_tallies_match_a_recount(Workflow.objects.get(slug="gz-decals-dr5"))
