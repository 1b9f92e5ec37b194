"""The live queue end to end with a real Celery worker process, on whichever backends the
suite runs with: the embedded default (SQLite file + filesystem broker) or PostgreSQL + Redis.

Votes through the API → an encoder run on the worker (stores the embeddings) → more votes
through the API → the ``classification_counted`` trigger sends the check after commit → the
worker starts and runs a head refresh → the queue follows the new head's tree-BALD scores."""

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
from workflows.models import Workflow

from .conftest import TINY_HEAD, TINY_TRAINING, make_galaxies, simulated_answer

# serialized_rollback: its flush must not re-create the content types that the next serialized test restores.
pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REPO_ROOT = Path(__file__).resolve().parents[3]
RUN_TIMEOUT = 300
HEAD_AFTER = 10


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
    env = {**os.environ, "DATABASE_URL": database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
           "VAR_DIR": str(tmp_path / "var"), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
           "RETRAIN_AFTER_CLASSIFICATIONS": "0", "RETRAIN_MIN_GALAXIES": "5", "RETRAIN_PROGRESS_INTERVAL": "0.2",
           "RETRAIN_PREDICT_CHUNK_SIZE": "10", "RETRAIN_PREDICT_MC_SAMPLES": "3", "OMP_NUM_THREADS": "1",
           "HEAD_REFRESH_AFTER_CLASSIFICATIONS": str(HEAD_AFTER), "HEAD_REFRESH_CONFIG": json.dumps(TINY_HEAD),
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


def test_votes_trigger_a_head_refresh_on_the_worker_and_the_queue_follows_it(worker, tmp_path):
    from django.contrib.auth import get_user_model

    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    Workflow.objects.filter(pk=workflow.pk).update(random_fraction=0.0)
    galaxies = make_galaxies(30)
    rng = random.Random(0)
    for client in (APIClient(), APIClient()):
        for galaxy in galaxies[:20]:
            vote(client, workflow, galaxy, rng)

    admin = APIClient()
    admin.force_authenticate(get_user_model().objects.create_superuser("boss", "boss@example.org", "pw-12345678"))
    started = admin.post(f"/api/workflows/{workflow.slug}/training-runs/", {"hyperparameters": TINY_TRAINING},
                         format="json")
    assert started.status_code == 201, started.json()
    encoder_run = wait_for(lambda: (b := admin.get(f"/api/training-runs/{started.json()['id']}/").json())["status"]
                           in ("succeeded", "failed") and b, "the encoder run", tmp_path)
    assert encoder_run["status"] == "succeeded", encoder_run["error"]
    encoder = ModelVersion.objects.get(pk=encoder_run["model_version"])
    assert encoder.embeddings.count() == 30
    assert not TrainingRun.objects.filter(kind=TrainingRun.Kind.HEAD).exists()  # 40 votes knew no encoder yet

    volunteer = APIClient()
    for galaxy in galaxies[20:20 + HEAD_AFTER]:  # HEAD_AFTER new counted votes since the encoder's snapshot
        vote(volunteer, workflow, galaxy, rng)

    def head_done():
        runs = admin.get(f"/api/workflows/{workflow.slug}/training-runs/").json()["results"]
        heads = [r for r in runs if r["kind"] == "head" and r["status"] in ("succeeded", "failed")]
        return heads[0] if heads else None

    head_run = wait_for(head_done, "a head refresh started by the votes", tmp_path)
    assert head_run["status"] == "succeeded", head_run["error"]
    assert (head_run["trigger"], head_run["init_model_version"]) == ("schedule", encoder.pk)
    assert head_run["snapshot_classifications"] == 40 + HEAD_AFTER
    head = ModelVersion.objects.get(pk=head_run["model_version"])
    assert head.is_active and head.kind == "head" and head.encoder == encoder
    versions = admin.get(f"/api/workflows/{workflow.slug}/model-versions/").json()["results"]
    assert {(v["kind"], v["is_active"]) for v in versions} == {("head", True), ("encoder", False)}

    scores = dict(Prediction.objects.filter(model_version=head).values_list("galaxy_id", "acquisition"))
    assert set(scores) == {g.pk for g in galaxies}
    priorities = dict(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", "priority"))
    assert priorities == pytest.approx(scores)
    encoder_scores = dict(Prediction.objects.filter(model_version=encoder).values_list("galaxy_id", "acquisition"))
    assert scores != pytest.approx(encoder_scores)
    queue = APIClient().get(f"/api/workflows/{workflow.slug}/next/", {"limit": 10}).json()["results"]
    assert {item["galaxy"]["id"] for item in queue} == set(sorted(scores, key=scores.get, reverse=True)[:10])
