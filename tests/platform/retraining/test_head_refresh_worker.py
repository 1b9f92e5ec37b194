"""The live queue end to end with a real Celery worker process, on whichever backends the
suite runs with: the embedded default (SQLite file + filesystem broker) or PostgreSQL + Redis.

Votes through the API → an encoder run on the worker (stores the embeddings; fewer galaxies
than QUEUE_COVERAGE_LABELS have votes, so its TypiClust picks queue first) → volunteers vote on
what the queue serves → the ``classification_counted`` trigger sends the check after commit →
the worker runs a head refresh (still in the start: its picks first, then its tree-BALD scores)
→ more votes pass the threshold → the next head refresh's tree-BALD scores are the queue."""

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from classifications.models import SubjectStatus
from config import celery_app
from retraining.models import ModelVersion, Prediction, TrainingRun
from tests.platform.factories import volunteer_client
from workflows.models import Workflow

from .conftest import GATE_OPEN, TINY_HEAD, TINY_TRAINING, make_galaxies, simulated_answer

# serialized_rollback: its teardown flush then skips post_migrate, whose re-created content types
# (new ids) would collide with test_worker.py's serialized restore when both run in one session.
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REPO_ROOT = Path(__file__).resolve().parents[3]
RUN_TIMEOUT = 300
HEAD_AFTER = 10
COVERAGE_LABELS = 32  # 20 galaxies voted when the encoder activates, 30 at the first head, 40 at the second


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        if "memory" in str(db["NAME"]) or str(db["NAME"]).startswith("file:"):
            pytest.fail(f"the SQLite test database must be a file for a worker to share it, is {db['NAME']!r}")
        return f"sqlite:///{db['NAME']}"
    if connection.vendor != "postgresql":
        pytest.skip(f"no worker test for the {connection.vendor} backend")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def broker(tmp_path, monkeypatch):
    """Redis as configured, or a filesystem broker in this test's own folder (shared by this
    process, which sends, and the worker, which receives; nothing else's messages)."""
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://"):
        import redis

        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError as exc:
            pytest.skip(f"Redis at {url} unreachable: {exc}")
        yield {}
        return
    var = tmp_path / "var"
    folders = {name: var / "broker" / sub for name, sub in
               (("data_folder_in", "queue"), ("data_folder_out", "queue"), ("processed_folder", "processed"),
                ("control_folder", "control"))}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setitem(celery_app.conf, "broker_transport_options",
                        {**{k: str(v) for k, v in folders.items()}, "store_processed": False})
    # kombu keys its connection pools by the transport options: new options, new pools.
    monkeypatch.setattr(celery_app, "_pool", None)
    monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
    yield {"VAR_DIR": str(var)}  # the worker's settings derive the same folders from VAR_DIR


@pytest.fixture
def worker(transactional_db, broker, tmp_path, settings):
    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = HEAD_AFTER
    env = {**os.environ, "ACTIVATION_MAX_LOSS_INCREASE": str(GATE_OPEN),
           "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
           "VAR_DIR": str(tmp_path / "var"), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "RETRAIN_AFTER_CLASSIFICATIONS": "0", "RETRAIN_MIN_GALAXIES": "5", "RETRAIN_PROGRESS_INTERVAL": "0.2",
           "RETRAIN_PREDICT_CHUNK_SIZE": "10", "RETRAIN_PREDICT_MC_SAMPLES": "3", "OMP_NUM_THREADS": "1",
           "HEAD_REFRESH_AFTER_CLASSIFICATIONS": str(HEAD_AFTER), "HEAD_REFRESH_CONFIG": json.dumps(TINY_HEAD),
           "HEAD_REFRESH_MIN_DISTINCT_VOLUNTEERS": "1", "QUEUE_COVERAGE_LABELS": str(COVERAGE_LABELS),
           **broker}
    log = open(tmp_path / "worker.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "--workdir", "platform", "-A", "config", "worker", "-Q", "default,gpu",
         "--concurrency", "1", "--prefetch-multiplier", "1", "-l", "info", "-n", f"head-{uuid.uuid4().hex[:8]}@%h"],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    yield process
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)
    log.close()


def wait_for(predicate, what: str, tmp_path):
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {RUN_TIMEOUT} s waiting for {what}\n{(tmp_path / 'worker.log').read_text()[-4000:]}")


def vote(client: APIClient, workflow: Workflow, galaxy, rng: random.Random) -> None:
    response = client.post("/api/classifications/", {
        "workflow": workflow.slug, "galaxy": galaxy.id_str, "annotations": simulated_answer(galaxy, rng),
        "idempotency_key": uuid.uuid4().hex}, format="json")
    assert response.status_code == 201, response.json()


def queue_ids(workflow: Workflow, limit: int = 10) -> list[int]:
    return [item["galaxy"]["id"] for item in
            volunteer_client().get(f"/api/workflows/{workflow.slug}/next/", {"limit": limit}).json()["results"]]


def priorities_of(workflow: Workflow) -> dict[int, float]:
    return dict(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", "priority"))


def scores_of(version: ModelVersion) -> dict[int, float]:
    return dict(Prediction.objects.filter(model_version=version).values_list("galaxy_id", "acquisition"))


def voted_ids(workflow: Workflow) -> set[int]:
    return set(SubjectStatus.objects.filter(workflow=workflow, classification_count__gt=0)
               .values_list("galaxy_id", flat=True))


def test_votes_trigger_a_head_refresh_on_the_worker_and_the_queue_follows_it(worker, tmp_path):
    from django.contrib.auth import get_user_model

    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    Workflow.objects.filter(pk=workflow.pk).update(random_fraction=0.0)
    galaxies = make_galaxies(40)
    by_id = {g.pk: g for g in galaxies}
    rng = random.Random(0)
    for client in (volunteer_client(), volunteer_client()):
        for galaxy in galaxies[:20]:
            vote(client, workflow, galaxy, rng)

    admin = volunteer_client()
    admin.force_authenticate(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678"))
    started = admin.post(f"/api/workflows/{workflow.slug}/training-runs/", {"hyperparameters": TINY_TRAINING},
                         format="json")
    assert started.status_code == 201, started.json()
    encoder_run = wait_for(lambda: (b := admin.get(f"/api/training-runs/{started.json()['id']}/").json())["status"]
                           in ("succeeded", "failed") and b, "the encoder run", tmp_path)
    assert encoder_run["status"] == "succeeded", encoder_run["error"]
    encoder = ModelVersion.objects.get(pk=encoder_run["model_version"])
    assert encoder.embeddings.count() == 40
    assert not TrainingRun.objects.filter(kind=TrainingRun.Kind.HEAD).exists()  # 40 votes knew no encoder yet

    # The start: 20 of 32 galaxies voted, so 12 TypiClust picks queue first, none voted on.
    assert encoder.queue_rule["start"] == {**encoder.queue_rule["start"], "voted": 20, "picks": 12}
    assert "TypiClust start (12 picks first; 20 of 32 galaxies voted)" in encoder_run["log"]
    priorities = priorities_of(workflow)
    picks = sorted(priorities, key=priorities.get, reverse=True)[:12]
    assert not set(picks) & voted_ids(workflow)
    encoder_scores = scores_of(encoder)
    assert {k: priorities[k] for k in encoder_scores if k not in picks} == pytest.approx(
        {k: v for k, v in encoder_scores.items() if k not in picks})
    served = queue_ids(workflow)
    assert set(served) == set(picks[:10])

    volunteer = volunteer_client()
    for galaxy_id in served:  # HEAD_AFTER new counted votes since the encoder's snapshot, on the picks served
        vote(volunteer, workflow, by_id[galaxy_id], rng)

    def head_done(count: int):
        def done():
            runs = admin.get(f"/api/workflows/{workflow.slug}/training-runs/").json()["results"]
            heads = [r for r in runs if r["kind"] == "head" and r["status"] in ("succeeded", "failed")]
            return heads[0] if len(heads) >= count else None
        return done

    head_run = wait_for(head_done(1), "a head refresh started by the votes", tmp_path)
    assert head_run["status"] == "succeeded", head_run["error"]
    assert (head_run["trigger"], head_run["init_model_version"]) == ("schedule", encoder.pk)
    assert head_run["snapshot_classifications"] == 40 + HEAD_AFTER
    head = ModelVersion.objects.get(pk=head_run["model_version"])
    assert head.is_active and head.kind == "head" and head.encoder == encoder
    versions = admin.get(f"/api/workflows/{workflow.slug}/model-versions/").json()["results"]
    assert {(v["kind"], v["is_active"]) for v in versions} == {("head", True), ("encoder", False)}
    active = next(v for v in versions if v["is_active"])
    assert active["queue_rule_summary"] == "TypiClust start (2 picks first; 30 of 32 galaxies voted), then BALD"

    # Still in the start: the head's 2 picks (of the 10 galaxies without votes) first, then its BALD.
    scores = scores_of(head)
    assert set(scores) == {g.pk for g in galaxies}
    priorities = priorities_of(workflow)
    head_picks = sorted(priorities, key=priorities.get, reverse=True)[:2]
    assert not set(head_picks) & voted_ids(workflow)
    assert {k: priorities[k] for k in scores if k not in head_picks} == pytest.approx(
        {k: v for k, v in scores.items() if k not in head_picks})
    assert queue_ids(workflow, limit=2) == head_picks

    # Past the threshold (40 galaxies voted ≥ 32): the next head's tree-BALD scores are the queue.
    unvoted = [g for g in galaxies if g.pk not in voted_ids(workflow)]
    for galaxy in unvoted:
        vote(volunteer, workflow, galaxy, rng)
    second_run = wait_for(head_done(2), "a second head refresh", tmp_path)
    assert second_run["status"] == "succeeded", second_run["error"]
    second = ModelVersion.objects.get(pk=second_run["model_version"])
    assert second.is_active and "start" not in second.queue_rule and second.queue_rule_summary == "BALD"
    scores = scores_of(second)
    assert priorities_of(workflow) == pytest.approx(scores)
    assert scores != pytest.approx(encoder_scores)
    queue = queue_ids(workflow)
    assert set(queue) == set(sorted(scores, key=scores.get, reverse=True)[:10])
