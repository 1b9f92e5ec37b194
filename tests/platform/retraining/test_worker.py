"""The loop end to end with a real Celery worker process (not eager mode) on the embedded
default (SQLite file + filesystem broker, what a fresh clone runs) and on PostgreSQL + Redis;
and the fault case (Redis: its unacknowledged messages are redelivered): the worker is
SIGKILLed mid-training, a new worker resumes the run, the active model never changes
meanwhile, no duplicate version."""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.test import APIClient

from classifications.models import SubjectStatus
from retraining.models import ModelVersion, Prediction, TrainingRun
from tests.platform.factories import volunteer_client
from workflows.models import Workflow

from .conftest import GATE_OPEN, TINY_TRAINING, make_galaxies, seed_votes, simulated_answer

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
REPO_ROOT = Path(__file__).resolve().parents[3]
RUN_TIMEOUT = 90


def redis_unreachable_reason() -> str | None:
    url = settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        return f"needs a Redis broker: CELERY_BROKER_URL is {url!r} (CI sets redis://127.0.0.1:6379/0)"
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at {url} unreachable: {exc}"
    return None


def worker_database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def purge_filesystem_queue() -> None:
    """The filesystem broker's folder is this checkout's (VAR_DIR/broker): drop messages a
    demo session or an earlier test left, so this worker only sees the test's own."""
    for message in Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).glob("*.msg"):
        message.unlink(missing_ok=True)


def purge_redis_queues(url: str) -> None:
    """Drop the messages (queued and unacknowledged) an earlier test left in this Redis database."""
    import redis

    client = redis.Redis.from_url(url)
    for pattern in ("default*", "gpu*", "unacked*"):
        for key in client.scan_iter(pattern):
            client.delete(key)


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """Start `celery worker -Q default,gpu` on the test database and MEDIA_ROOT; every worker
    is SIGKILLed (whole process group) at teardown, before the database is flushed."""
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.skip("the worker needs a file test database (settings give SQLite a TEST NAME)")
        if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
            pytest.skip(f"on SQLite the worker test uses the filesystem broker, not {settings.CELERY_BROKER_URL!r}")
        purge_filesystem_queue()
    elif reason := redis_unreachable_reason():
        pytest.skip(reason)
    else:
        purge_redis_queues(settings.CELERY_BROKER_URL)
    processes = []

    def start(command: str = "worker", queues: str = "default,gpu", **extra_env: str) -> subprocess.Popen:
        """A worker on ``queues``, or (``command="beat"``) the beat scheduler."""
        # On the filesystem broker the worker shares this process's VAR_DIR (its broker folder).
        var_dir = settings.VAR_DIR if settings.CELERY_BROKER_URL.startswith("filesystem://") else tmp_path / "var"
        env = {**os.environ, "ACTIVATION_MAX_LOSS_INCREASE": str(GATE_OPEN),
           "DATABASE_URL": worker_database_url(), "MEDIA_ROOT": str(settings.MEDIA_ROOT),
               "VAR_DIR": str(var_dir), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
               "RETRAIN_AFTER_CLASSIFICATIONS": "0", "RETRAIN_MIN_GALAXIES": "5", "RETRAIN_PROGRESS_INTERVAL": "0.2",
               "QUEUE_COVERAGE_LABELS": "0",  # its queue checks are against the BALD scores
               "RETRAIN_PREDICT_CHUNK_SIZE": "10", "RETRAIN_PREDICT_MC_SAMPLES": "3", "OMP_NUM_THREADS": "1",
               **extra_env}
        log = open(tmp_path / f"worker-{len(processes)}.log", "w")
        arguments = (["beat"] if command == "beat" else
                     ["worker", "-Q", queues, "--concurrency", "1", "--prefetch-multiplier", "1",
                      "-n", f"test-{uuid.uuid4().hex[:8]}@%h"])
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "--workdir", "platform", "-A", "config", *arguments, "-l", "info"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        processes.append(process)
        return process

    yield start
    for process in processes:
        kill(process)


def kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def worker_logs(tmp_path) -> str:
    return "\n".join(p.read_text()[-3000:] for p in sorted(tmp_path.glob("worker-*.log")))


def wait_for(predicate, timeout: float, tmp_path, what: str, run_id: int | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    run_log = f"run log:\n{TrainingRun.objects.get(pk=run_id).log}\n" if run_id is not None else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{run_log}{worker_logs(tmp_path)}")


def admin_client() -> APIClient:
    client = APIClient()
    client.force_authenticate(get_user_model().objects.create_superuser(
        f"admin-{uuid.uuid4().hex[:6]}", "admin@example.org", "pw-12345678"))
    return client


def wait_until_finished(client: APIClient, run_id: int, tmp_path) -> dict:
    return wait_for(lambda: (body := client.get(f"/api/training-runs/{run_id}/").json())["status"]
                    in ("succeeded", "failed", "cancelled") and body, RUN_TIMEOUT, tmp_path, f"run {run_id}")


def acquisition_by_galaxy(version: ModelVersion) -> dict[int, float]:
    return dict(Prediction.objects.filter(model_version=version).values_list("galaxy_id", "acquisition"))


def test_votes_through_api_retrain_on_worker_and_queue_follows_scores(start_worker, tmp_path):
    import random

    start_worker()
    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    Workflow.objects.filter(pk=workflow.pk).update(random_fraction=0.0)
    galaxies = make_galaxies(30)
    rng = random.Random(0)
    for volunteer in (volunteer_client(), volunteer_client()):
        for galaxy in galaxies[:24]:
            response = volunteer.post("/api/classifications/", {
                "workflow": workflow.slug, "galaxy": galaxy.id_str, "annotations": simulated_answer(galaxy, rng),
                "idempotency_key": uuid.uuid4().hex}, format="json")
            assert response.status_code == 201, response.json()

    admin = admin_client()
    started = admin.post(f"/api/workflows/{workflow.slug}/training-runs/", {"hyperparameters": TINY_TRAINING},
                         format="json")
    assert started.status_code == 201, started.json()
    run = wait_until_finished(admin, started.json()["id"], tmp_path)
    assert run["status"] == "succeeded", run["error"] + worker_logs(tmp_path)
    assert run["snapshot_galaxies"] + run["snapshot_holdout_galaxies"] == 24 and run["history"]

    version = ModelVersion.objects.get(workflow=workflow, is_active=True)
    assert version.run_id == run["id"] and run["model_version"] == version.pk
    scores = acquisition_by_galaxy(version)
    assert len(scores) == 30
    priorities = dict(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", "priority"))
    assert priorities == pytest.approx(scores)
    queue = volunteer_client().get(f"/api/workflows/{workflow.slug}/next/", {"limit": 10}).json()["results"]
    assert {item["galaxy"]["id"] for item in queue} == set(sorted(scores, key=scores.get, reverse=True)[:10])


@pytest.mark.postgres
def test_killed_worker_run_is_redelivered_resumed_and_active_model_kept(start_worker, tmp_path):
    if reason := redis_unreachable_reason():
        pytest.skip(f"redelivery after a killed worker {reason} (the filesystem broker deletes a message as it is read)")
    short_visibility = {"CELERY_VISIBILITY_TIMEOUT": "1"}
    first_worker = start_worker(**short_visibility)
    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    seed_votes(workflow, make_galaxies(30), volunteers=2)
    admin = admin_client()
    runs_url = f"/api/workflows/{workflow.slug}/training-runs/"

    first = wait_until_finished(admin, admin.post(runs_url, {"hyperparameters": TINY_TRAINING}, format="json")
                                .json()["id"], tmp_path)
    assert first["status"] == "succeeded", first["error"]
    active = ModelVersion.objects.get(workflow=workflow, is_active=True)
    active_scores = acquisition_by_galaxy(active)

    long_training = {**TINY_TRAINING, "epochs": 200, "patience": 200, "image_size": 32, "widths": [16, 32]}
    run_id = admin.post(runs_url, {"hyperparameters": long_training}, format="json").json()["id"]
    wait_for(lambda: len(TrainingRun.objects.get(pk=run_id).history) >= 2, RUN_TIMEOUT, tmp_path, "two epochs")
    kill(first_worker)

    killed = TrainingRun.objects.get(pk=run_id)
    assert killed.status == TrainingRun.Status.RUNNING and killed.attempt == 1
    assert ModelVersion.objects.get(workflow=workflow, is_active=True) == active
    assert ModelVersion.objects.filter(workflow=workflow).count() == 1
    priorities = dict(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", "priority"))
    assert priorities == pytest.approx(active_scores)

    time.sleep(1.5)  # past the visibility timeout: the next worker restores the unacknowledged message
    start_worker(**short_visibility)
    run = wait_until_finished(admin, run_id, tmp_path)
    assert run["status"] == "succeeded", run["error"] + worker_logs(tmp_path)
    assert run["attempt"] == 2 and "resumes" in run["log"]
    epochs = [h["epoch"] for h in run["history"]]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > len(killed.history)
    versions = ModelVersion.objects.filter(workflow=workflow)
    assert versions.count() == 2 and versions.filter(run_id=run_id).count() == 1
    assert versions.get(is_active=True).run_id == run_id


# Lost workers, sped up: beat recovers a run silent for HEARTBEAT_TIMEOUT, checking every REAP_INTERVAL.
# Not shorter: a worker's first torch import holds the GIL for seconds on a busy 2-core machine,
# and the heartbeat thread cannot beat meanwhile (production: 60 s).
HEARTBEAT_TIMEOUT, REAP_INTERVAL = 10.0, 1.0
LOST_WORKER_ENV = {"RETRAIN_HEARTBEAT_INTERVAL": "0.5", "RETRAIN_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                   "RETRAIN_REAP_INTERVAL": str(REAP_INTERVAL), "RETRAIN_PREDICT_CHUNK_SIZE": "2",
                   "RETRAIN_PREDICT_MC_SAMPLES": "24"}
# Beat's scheduler wakes at least every 5 s (django-celery-beat's sync interval), a worker needs a
# few seconds to start: the bound the test holds the reaper to.
RECOVERY_BOUND = HEARTBEAT_TIMEOUT + REAP_INTERVAL + 5.0


def test_worker_group_killed_mid_training_and_mid_prediction_run_is_taken_over_once(start_worker, tmp_path):
    """The production layout: beat, a CPU worker (``default``: the reaper runs there) and the
    ``gpu`` worker, whose whole process group is SIGKILLed twice. No redelivery here (Redis keeps
    the killed worker's unacknowledged message for the 6 h visibility timeout; the filesystem
    broker deleted it on reading): beat's reaper alone brings the run back, first to the queue
    (training resumes from its last epoch on the next gpu worker), then by sending its missing
    prediction chunks again."""
    start_worker("beat", **LOST_WORKER_ENV)
    start_worker(queues="default", **LOST_WORKER_ENV)
    trainer = start_worker(queues="gpu", **LOST_WORKER_ENV)
    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    galaxies = make_galaxies(40)
    seed_votes(workflow, galaxies, volunteers=2)
    admin = admin_client()
    training = {**TINY_TRAINING, "epochs": 60, "patience": 60, "image_size": 32, "widths": [16, 32]}
    run_id = admin.post(f"/api/workflows/{workflow.slug}/training-runs/", {"hyperparameters": training},
                        format="json").json()["id"]

    wait_for(lambda: len(TrainingRun.objects.get(pk=run_id).history) >= 2, RUN_TIMEOUT, tmp_path, "two epochs")
    kill(trainer)
    killed_at = time.monotonic()
    epochs_before = len(TrainingRun.objects.get(pk=run_id).history)
    wait_for(lambda: TrainingRun.objects.get(pk=run_id).status == TrainingRun.Status.QUEUED, 30, tmp_path,
             "the reaper to queue the run again", run_id)
    recovered_in = time.monotonic() - killed_at
    assert recovered_in <= RECOVERY_BOUND, recovered_in
    print(f"killed mid-training: queued again after {recovered_in:.1f} s (bound {RECOVERY_BOUND:.0f} s)")
    assert not ModelVersion.objects.filter(workflow=workflow).exists()

    predictor = start_worker(queues="gpu", **LOST_WORKER_ENV)
    wait_for(lambda: TrainingRun.objects.get(pk=run_id).prediction_chunks_done, RUN_TIMEOUT, tmp_path,
             "the first predicted chunk", run_id)
    kill(predictor)
    killed_at = time.monotonic()
    lost = TrainingRun.objects.get(pk=run_id)
    assert lost.status == TrainingRun.Status.RUNNING and lost.stage == TrainingRun.Stage.PREDICTING
    assert lost.attempt == 2 and "attempt 2 resumes" in lost.log, lost.log
    assert len(lost.prediction_chunks_done) < len(lost.prediction_chunks) == len(galaxies) // 2
    assert not ModelVersion.objects.filter(workflow=workflow, is_active=True).exists()
    wait_for(lambda: "sent again" in TrainingRun.objects.get(pk=run_id).log, 30, tmp_path,
             "the reaper to send the missing chunks again", run_id)
    recovered_in = time.monotonic() - killed_at
    assert recovered_in <= RECOVERY_BOUND, recovered_in
    print(f"killed mid-prediction: chunks sent again after {recovered_in:.1f} s (bound {RECOVERY_BOUND:.0f} s)")

    start_worker(queues="gpu", **LOST_WORKER_ENV)
    run = wait_until_finished(admin, run_id, tmp_path)
    assert run["status"] == "succeeded", run["error"] + worker_logs(tmp_path)
    epochs = [h["epoch"] for h in run["history"]]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) > epochs_before
    versions = ModelVersion.objects.filter(workflow=workflow)
    assert versions.count() == 1 and versions.get().run_id == run_id and versions.get().is_active
    assert Prediction.objects.filter(model_version=versions.get()).count() == len(galaxies)


class RedisServer:
    """A redis-server of the test's own (another port, a temporary folder), so it can be killed."""

    def __init__(self, folder: Path, *persistence: str):
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.folder, self.persistence, self.process = folder, persistence, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
             *self.persistence], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return
            except redis.RedisError:
                time.sleep(0.1)
        pytest.fail("redis-server did not come up")

    def crash(self) -> None:
        kill(self.process)

    def queued(self, queue: str) -> int:
        import redis

        return redis.Redis.from_url(self.url).llen(queue)


@pytest.fixture
def redis_server(tmp_path):
    """Make RedisServers; each is killed at teardown."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server for a Redis of the test's own (Debian: apt-get install redis-server)")
    servers = []

    def make(name: str, *persistence: str) -> RedisServer:
        (tmp_path / name).mkdir()
        servers.append(RedisServer(tmp_path / name, *persistence))
        servers[-1].start()
        return servers[-1]

    yield make
    for server in servers:
        if server.process.poll() is None:
            server.crash()


def send_training(run_id: int, broker_url: str) -> None:
    """What tasks.enqueue_training sends, to the test's own Redis."""
    from kombu import Connection

    from retraining.tasks import train_model

    with Connection(broker_url) as connection:
        train_model.apply_async((run_id,), connection=connection)


def test_queued_training_survives_a_redis_crash_or_is_sent_again(start_worker, redis_server, tmp_path):
    """The compose Redis keeps an append-only file synced every second: a message queued before
    the crash is still there after it, and the worker started afterwards runs it. A Redis without
    persistence loses it; the run stays queued in the database and beat's reaper sends it again
    after RETRAIN_QUEUED_RESEND. Either way no run is lost for good."""
    workflow = Workflow.objects.get(slug="gz-decals-dr5")
    seed_votes(workflow, make_galaxies(12), volunteers=2)
    from retraining.runs import start_training_run

    durable = redis_server("aof", "--appendonly", "yes", "--appendfsync", "everysec", "--save", "")
    first = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.API, overrides=TINY_TRAINING)
    send_training(first.pk, durable.url)
    assert durable.queued("gpu") == 1
    time.sleep(1.5)  # everysec: the append-only file is synced within a second
    durable.crash()
    durable.start()
    assert durable.queued("gpu") == 1
    worker = start_worker(CELERY_BROKER_URL=durable.url)
    admin = admin_client()
    assert wait_until_finished(admin, first.pk, tmp_path)["status"] == "succeeded"
    kill(worker)

    volatile = redis_server("none", "--appendonly", "no", "--save", "")
    second = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.API, overrides=TINY_TRAINING)
    send_training(second.pk, volatile.url)
    volatile.crash()
    volatile.start()
    assert volatile.queued("gpu") == 0  # the message is gone
    resend = {"CELERY_BROKER_URL": volatile.url, "RETRAIN_QUEUED_RESEND": "3", "RETRAIN_REAP_INTERVAL": "1"}
    start_worker("beat", **resend)
    start_worker(**resend)
    run = wait_until_finished(admin, second.pk, tmp_path)
    assert run["status"] == "succeeded" and run["attempt"] == 1, run["log"]
    assert ModelVersion.objects.filter(workflow=workflow).count() == 2
