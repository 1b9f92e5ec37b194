"""Concurrent submits on PostgreSQL (one connection per thread): tallies stay equal to a recount
of the stored classifications, duplicates are never counted twice, retirement is never overshot."""

import random
import threading
import uuid
from collections import Counter

import pytest
from django.db import connection

from classifications.errors import SubjectRetired
from classifications.models import Classification, SubjectStatus
from classifications.services import Submission, ensure_subject_statuses, submit_classification
from classifications.volunteers import Volunteer
from tests.platform.factories import GalaxyFactory
from workflows.models import Workflow

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

N_THREADS = 8


def run_in_threads(jobs_per_thread: list[list[dict]]) -> list[tuple[dict, object]]:
    """Each thread submits its jobs on its own connection, all starting at the same instant;
    returns (job, SubmissionResult or exception) for every job."""
    start = threading.Barrier(len(jobs_per_thread))
    outcomes: list[tuple[dict, object]] = []
    lock = threading.Lock()

    def work(jobs):
        try:
            start.wait()
            for job in jobs:
                workflow = Workflow.objects.get(slug=job["workflow"])
                try:
                    outcome = submit_classification(submission=Submission(workflow_slug=workflow.slug,
                                                                          galaxy_id_str=job["galaxy"],
                                                                          annotations=job["annotations"],
                                                                          idempotency_key=job["key"]),
                                                    volunteer=job["volunteer"])
                except Exception as exc:  # noqa: BLE001 - every outcome is asserted on by the caller
                    outcome = exc
                with lock:
                    outcomes.append((job, outcome))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(jobs,)) for jobs in jobs_per_thread]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def assert_tallies_match_a_recount(workflow: Workflow) -> None:
    for status in SubjectStatus.objects.filter(workflow=workflow):
        counted = Classification.objects.filter(workflow=workflow, galaxy_id=status.galaxy_id, counted=True)
        votes = Counter(f"{a['question']}_{a['answer']}" for c in counted for a in c.annotations)
        assert status.classification_count == counted.count()
        assert status.vote_counts == dict(votes)
        per_volunteer = Counter(counted.values_list("volunteer_key", flat=True))
        assert all(n == 1 for n in per_volunteer.values()), per_volunteer


@pytest.fixture
def workflow():
    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    Workflow.objects.filter(pk=workflow.pk).update(retirement_count=1000)
    workflow.refresh_from_db()
    return workflow


def test_mixed_parallel_submits_keep_tallies_exact(workflow):
    galaxies = GalaxyFactory.create_batch(5)
    ensure_subject_statuses(workflow=workflow)
    rng = random.Random(11)
    volunteers = [Volunteer.anonymous(f"v{i}") for i in range(30)]
    # 8 threads x 25 submits over 5 galaxies and 30 volunteers (so volunteers repeat galaxies);
    # every 5th job of a thread pair is the same submission with the same key, sent by both.
    shared = {(pair, j): {"workflow": workflow.slug, "galaxy": rng.choice(galaxies).id_str,
                          "volunteer": rng.choice(volunteers), "key": uuid.uuid4().hex,
                          "annotations": workflow.decision_tree.random_path(rng)}
              for pair in range(N_THREADS // 2) for j in range(0, 25, 5)}
    plans = [[shared[(t // 2, j)] if j % 5 == 0 else
              {"workflow": workflow.slug, "galaxy": rng.choice(galaxies).id_str, "volunteer": rng.choice(volunteers),
               "key": uuid.uuid4().hex, "annotations": workflow.decision_tree.random_path(rng)}
              for j in range(25)] for t in range(N_THREADS)]
    outcomes = run_in_threads(plans)

    assert len(outcomes) == N_THREADS * 25
    assert not [o for _, o in outcomes if isinstance(o, Exception)]
    unique_keys = {job["key"] for plan in plans for job in plan}
    assert Classification.objects.count() == len(unique_keys)
    by_key: dict[str, list] = {}
    for job, outcome in outcomes:
        by_key.setdefault(job["key"], []).append(outcome)
    for key, results in by_key.items():
        assert sum(r.created for r in results) == 1, key
        assert len({r.classification.id for r in results}) == 1
    assert_tallies_match_a_recount(workflow)
    pairs = {(job["galaxy"], job["volunteer"].key) for plan in plans for job in plan}
    assert Classification.objects.filter(counted=True).count() == len(pairs)


def test_same_key_sent_by_eight_threads_at_once_is_stored_and_counted_once(workflow):
    galaxy = GalaxyFactory()
    ensure_subject_statuses(workflow=workflow)
    job = {"workflow": workflow.slug, "galaxy": galaxy.id_str, "volunteer": Volunteer.anonymous("same"),
           "key": uuid.uuid4().hex, "annotations": workflow.decision_tree.random_path(random.Random(1))}
    outcomes = run_in_threads([[job] for _ in range(N_THREADS)])
    results = [o for _, o in outcomes]
    assert not [r for r in results if isinstance(r, Exception)]
    assert sum(r.created for r in results) == 1
    assert {r.classification.id for r in results} == {Classification.objects.get().id}
    assert SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy).classification_count == 1


def test_one_volunteer_submitting_one_galaxy_from_eight_threads_counts_once(workflow):
    galaxy = GalaxyFactory()
    ensure_subject_statuses(workflow=workflow)
    volunteer = Volunteer.anonymous("one-volunteer")
    paths = [workflow.decision_tree.random_path(random.Random(seed)) for seed in range(N_THREADS)]
    outcomes = run_in_threads([[{"workflow": workflow.slug, "galaxy": galaxy.id_str, "volunteer": volunteer,
                                 "key": uuid.uuid4().hex, "annotations": path}] for path in paths])
    assert sorted(o.classification.counted for _, o in outcomes) == [False] * (N_THREADS - 1) + [True]
    assert Classification.objects.count() == N_THREADS
    assert_tallies_match_a_recount(workflow)


def test_retirement_under_concurrency_is_never_overshot(workflow):
    Workflow.objects.filter(pk=workflow.pk).update(retirement_count=5)
    galaxy = GalaxyFactory()
    ensure_subject_statuses(workflow=workflow)
    rng = random.Random(5)
    plans = [[{"workflow": workflow.slug, "galaxy": galaxy.id_str, "volunteer": Volunteer.anonymous(f"r{t}-{j}"),
               "key": uuid.uuid4().hex, "annotations": workflow.decision_tree.random_path(rng)}
              for j in range(3)] for t in range(N_THREADS)]
    outcomes = run_in_threads(plans)

    accepted = [o for _, o in outcomes if not isinstance(o, Exception)]
    refused = [o for _, o in outcomes if isinstance(o, Exception)]
    assert len(accepted) == 5 and all(r.created and r.classification.counted for r in accepted)
    assert len(refused) == N_THREADS * 3 - 5 and all(isinstance(e, SubjectRetired) for e in refused)
    status = SubjectStatus.objects.get(workflow=workflow, galaxy=galaxy)
    assert status.classification_count == 5 and status.retired_at is not None
    assert status.retirement_reason == SubjectStatus.RetirementReason.CLASSIFICATION_COUNT
    assert_tallies_match_a_recount(workflow)
