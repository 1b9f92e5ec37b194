"""No request waits on a silent broker: a black-hole broker (a TCP server that accepts and
never answers) costs one bounded publish, then nothing while the backoff lasts; under a real
gunicorn every submit returns within a bound with its vote stored; the beat re-check later
sends the task the requests could not."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from celery import Celery
from django.db import connection

from classifications.models import Classification, SubjectStatus
from classifications.services import ensure_subject_statuses
from config import REPO_ROOT
from config.celery import app as celery_app
from core import broker
from retraining import tasks
from retraining.models import TrainingRun
from tests.platform.factories import GalaxyFactory, decals_smooth_path
from workflows.shipped import DECALS_DR5

BOUND_S = 8.0  # per request: one publish is ~1-2 s of socket timeouts; the rest is a loaded 2-core machine


@pytest.fixture
def black_hole():
    """A TCP port that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(128)
    held, stop = [], threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], held
    stop.set()
    thread.join()
    for sock in held:
        sock.close()
    server.close()


def test_a_publish_to_a_silent_broker_gives_up_in_bounded_time_then_backs_off(black_hole, settings, monkeypatch):
    port, held = black_hole
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery would prefer it to the app's broker
    settings.BROKER_PUBLISH_BACKOFF = 30
    app = Celery("black-hole", broker=f"redis://127.0.0.1:{port}/0", set_as_current=False)
    app.conf.broker_transport_options = {"socket_timeout": settings.BROKER_SOCKET_TIMEOUT,
                                         "socket_connect_timeout": settings.BROKER_SOCKET_TIMEOUT}

    @app.task(name="tests.noop")
    def noop() -> None: ...

    started = time.monotonic()
    first = broker.publish(noop)
    first_s = time.monotonic() - started
    assert first is not None and "Timeout" in first
    assert held, "the publish reached the black hole"
    assert first_s < 4 * settings.BROKER_SOCKET_TIMEOUT + 1
    started = time.monotonic()
    assert broker.publish(noop) is not None
    assert time.monotonic() - started < 0.05, "during the backoff nothing waits on the broker"


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def post(base: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict, float]:
    request = urllib.request.Request(f"{base}{path}", data=json.dumps(body or {}).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"X-Volunteer": token} if token else {})})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read()), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), time.monotonic() - started


@pytest.fixture
def gunicorn_on_black_hole(black_hole, transactional_db, tmp_path):
    port, held = black_hole
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        web_port = sock.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
           "CACHE_URL": f"filecache:{tmp_path / 'cache'}", "VAR_DIR": str(tmp_path / "var"), "DEBUG": "false",
           "HTTPS_ONLY": "0", "SECRET_KEY": "black-hole-" + "k" * 40, "ALLOWED_HOSTS": "127.0.0.1",
           "GUNICORN_BIND": f"127.0.0.1:{web_port}", "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4",
           "RETRAIN_AFTER_CLASSIFICATIONS": "1", "HEAD_REFRESH_AFTER_CLASSIFICATIONS": "1",  # check on every vote
           "OMP_NUM_THREADS": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--pythonpath", "platform", "-c",
                                "deploy/gunicorn.conf.py", "config.wsgi"], cwd=REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{web_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=2)
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            time.sleep(0.3)
    yield base, held
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


@pytest.mark.slow
def test_submits_return_in_bounded_time_and_the_beat_recheck_sends_the_task_later(gunicorn_on_black_hole, settings):
    base, held = gunicorn_on_black_hole
    galaxies = GalaxyFactory.create_batch(8)
    ensure_subject_statuses()
    tokens = [post(base, "/api/volunteers/anonymous/")[1]["token"] for _ in range(8)]

    def submit(i: int):
        return post(base, "/api/classifications/", {
            "workflow": DECALS_DR5, "galaxy": galaxies[i].id_str, "annotations": decals_smooth_path(),
            "idempotency_key": f"black-hole-{i}"}, token=tokens[i])

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(submit, range(8)))  # twice the server's threads, at once
    latencies = sorted(seconds for _, _, seconds in answers)
    print(f"\nsubmit latencies with a black-hole broker (s): {[round(s, 2) for s in latencies]}")
    assert [status for status, _, _ in answers] == [201] * 8
    assert latencies[-1] < BOUND_S
    assert held, "the web process did try the broker"
    assert Classification.objects.filter(counted=True).count() == 8
    assert sum(SubjectStatus.objects.filter(workflow__slug=DECALS_DR5).values_list("classification_count", flat=True)
               ) == 8
    assert not TrainingRun.objects.exists(), "the checks could not be sent"

    # Later, beat runs the re-check in a worker, whose broker answers (this test process's own).
    settings.RETRAIN_AFTER_CLASSIFICATIONS, settings.RETRAIN_MIN_DISTINCT_VOLUNTEERS = 8, 8
    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 0
    settings.RETRAIN_MIN_GALAXIES = 1
    with celery_app.connection_for_write() as conn:
        queue = conn.SimpleQueue("gpu")
        queue.clear()
        tasks.recheck_triggers()
        run = TrainingRun.objects.get()
        assert (run.status, run.trigger) == (TrainingRun.Status.QUEUED, TrainingRun.Trigger.SCHEDULE)
        message = queue.get(timeout=10)
        assert message.headers["task"] == "retraining.tasks.train_model" and message.headers["argsrepr"] == repr(
            (run.pk,))
        message.ack()
        queue.close()
