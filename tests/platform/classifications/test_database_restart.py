"""Fault test against real processes: PostgreSQL restarted twice (a crash, ``pg_ctl restart -m
immediate``, then a fast shutdown) while 8 volunteers submit through gunicorn
(deploy/gunicorn.conf.py, 2 workers × 2 threads). Each client retries a vote with the same
idempotency key until it is answered, as the classify page's outbox does. Afterwards: every
acknowledged vote is stored exactly once under the id the server answered, nothing else is
stored, and every tally equals a recount of the stored votes.

The database is a throwaway cluster of its own (``initdb`` into a temporary folder, another
port), so restarting it cannot disturb anything else using the machine's PostgreSQL."""

import glob
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from classifier.tree import DecisionTree

pytestmark = [pytest.mark.slow]
REPO_ROOT = Path(__file__).resolve().parents[3]
CLIENTS, GALAXIES, WORKFLOW = 8, 40, "gz-decals-dr5"
SECRET = "fault-test-only-not-a-secret-3c7e1a9f5b2d8064e1c3a5f7b9d2e4c6"

SEED = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from classifications.services import ensure_subject_statuses
from galaxies.models import Galaxy
from workflows.models import Workflow
Workflow.objects.update(retirement_count=1000, early_retirement=False)
Galaxy.objects.bulk_create([Galaxy(id_str=f"FAULT{i:04d}", ra=10 + i * 0.01, dec=5.0, image="galaxies/x.png")
                            for i in range(GALAXIES)])
ensure_subject_statuses()
for i in range(CLIENTS):
    user = get_user_model().objects.create_user(f"volunteer{i}", f"v{i}@example.org", "pw-12345678")
    print(Token.objects.create(user=user).key)
"""


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A PostgreSQL cluster in a temporary folder; as root, run as the postgres user (initdb refuses root)."""

    def __init__(self, bindir: Path, folder: Path):
        self.bindir, self.folder, self.port = bindir, folder, free_port()
        self.data, self.log = folder / "data", folder / "postgres.log"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def run(self, *command: str) -> None:
        subprocess.run([*self.as_user, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        self.run(str(self.bindir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.ctl("start")

    def ctl(self, action: str, mode: str = "fast") -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=50"
        self.run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                 "-m", mode, "-o", options, action)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/galaxy_fault"


@pytest.fixture
def cluster():
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("needs PostgreSQL's server binaries (initdb, pg_ctl) for a throwaway cluster; "
                    "Debian: apt-get install postgresql")
    # Not under pytest's temporary folder, which only its owner may enter (the server runs as postgres).
    folder = Path(tempfile.mkdtemp(prefix="galaxy-pgfault-"))
    cluster = Cluster(bindir, folder)
    try:
        cluster.init()
        yield cluster
    finally:
        try:
            cluster.ctl("stop", mode="immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(folder, ignore_errors=True)


def platform_env(cluster: Cluster, var_dir: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": cluster.url, "DEBUG": "false", "SECRET_KEY": SECRET, "HTTPS_ONLY": "0",
            "VAR_DIR": str(var_dir), "CELERY_BROKER_URL": "filesystem://", "CACHE_URL": "filecache:cache",
            "RETRAIN_AFTER_CLASSIFICATIONS": "0", "HEAD_REFRESH_AFTER_CLASSIFICATIONS": "0", "LOG_LEVEL": "WARNING",
            **{f"THROTTLE_{scope}": "1000000/min" for scope in ("SUBMIT", "SUBMIT_IP", "NEXT", "NEXT_IP")}}


def manage(env: dict[str, str], *command: str) -> str:
    done = subprocess.run([sys.executable, "manage.py", *command], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def server(cluster, tmp_path):
    import psycopg

    with psycopg.connect(cluster.url.replace("/galaxy_fault", "/postgres"), autocommit=True) as admin:
        admin.execute("CREATE DATABASE galaxy_fault")
    env = platform_env(cluster, tmp_path / "var")
    manage(env, "migrate", "--noinput")
    tokens = manage(env, "shell", "-c", f"GALAXIES, CLIENTS = {GALAXIES}, {CLIENTS}\n{SEED}").split()[-CLIENTS:]
    port = free_port()
    env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="2", GUNICORN_THREADS="2")
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "--pythonpath", "platform", "-c",
                                "deploy/gunicorn.conf.py", "config.wsgi"], cwd=REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        pytest.fail("gunicorn did not come up:\n" + (tmp_path / "gunicorn.log").read_text()[-3000:])
    yield port, tokens
    process.terminate()
    process.wait(timeout=30)


class Volunteer(threading.Thread):
    """Votes once on every galaxy in a random order, each vote retried with its key until answered."""

    def __init__(self, port: int, token: str, seed: int, stop: threading.Event):
        super().__init__(daemon=True)
        self.port, self.token, self.stop = port, token, stop
        rng = random.Random(seed)
        tree = DecisionTree.load("decals_dr5")
        self.votes = [{"workflow": WORKFLOW, "galaxy": f"FAULT{i:04d}", "annotations": tree.random_path(rng),
                       "idempotency_key": uuid.uuid4().hex} for i in rng.sample(range(GALAXIES), GALAXIES)]
        self.acked: dict[str, int] = {}  # key -> classification id the server answered
        self.failures: Counter = Counter()  # what a try got before its retry: status or exception name
        self.other: list = []

    def post(self, vote: dict) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("POST", "/api/classifications/", body=json.dumps(vote),
                               headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()

    def run(self) -> None:
        for vote in self.votes:
            while not self.stop.is_set():
                try:
                    status, body = self.post(vote)
                except (OSError, http.client.HTTPException, json.JSONDecodeError) as exc:
                    self.failures[type(exc).__name__] += 1
                else:
                    if status in (200, 201):
                        self.acked[vote["idempotency_key"]] = body["id"]
                        break
                    if status < 500:
                        self.other.append((status, body))
                        break
                    self.failures[status] += 1
                time.sleep(0.05)
            time.sleep(0.01)


def test_votes_survive_postgres_restarts_under_load(cluster, server):
    import psycopg

    port, tokens = server
    stop = threading.Event()
    volunteers = [Volunteer(port, token, seed, stop) for seed, token in enumerate(tokens)]
    for volunteer in volunteers:
        volunteer.start()

    def acked() -> int:
        return sum(len(v.acked) for v in volunteers)

    total = CLIENTS * GALAXIES
    for mode, share in (("immediate", 0.25), ("fast", 0.55)):
        deadline = time.monotonic() + 60
        while acked() < share * total and time.monotonic() < deadline:
            time.sleep(0.02)
        assert acked() < total, "the load ended before the restart: nothing was tested"
        cluster.ctl("restart", mode=mode)
    deadline = time.monotonic() + 120
    while any(v.is_alive() for v in volunteers) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()

    failures = sum((v.failures for v in volunteers), Counter())
    assert not [o for v in volunteers for o in v.other], [o for v in volunteers for o in v.other][:3]
    assert sum(failures.values()) > 0, "no request failed: the restarts were not under load"
    assert set(failures) <= {503, "ConnectionRefusedError", "ConnectionResetError", "RemoteDisconnected",
                             "TimeoutError", "BrokenPipeError"}, failures  # a JSON 503, never a 500
    sent = {key: vid for v in volunteers for key, vid in v.acked.items()}
    assert len(sent) == total  # every vote was answered in the end
    with psycopg.connect(cluster.url) as db:
        stored = db.execute("SELECT idempotency_key, id, volunteer_key, galaxy_id, counted, annotations "
                            "FROM classifications_classification").fetchall()
        statuses = db.execute("SELECT galaxy_id, classification_count, vote_counts FROM "
                              "classifications_subjectstatus s JOIN workflows_workflow w ON w.id = s.workflow_id "
                              "WHERE w.slug = %s", [WORKFLOW]).fetchall()
    assert len(stored) == total  # nothing lost, nothing duplicated
    assert {key: vid for key, vid, *_ in stored} == sent  # each under the id its volunteer was answered
    assert all(counted for *_, counted, _ in stored)
    assert len({(volunteer, galaxy) for _, _, volunteer, galaxy, _, _ in stored}) == total
    recount: dict[int, Counter] = {}
    for _, _, _, galaxy, _, annotations in stored:
        recount.setdefault(galaxy, Counter()).update(f"{a['question']}_{a['answer']}" for a in annotations)
    for galaxy, count, votes in statuses:
        expected = recount.get(galaxy, Counter())
        assert count == CLIENTS
        assert {k: v for k, v in votes.items() if v} == dict(expected), galaxy
    print(f"{total} votes acknowledged and stored once through 2 restarts; failed tries retried: {dict(failures)}")
