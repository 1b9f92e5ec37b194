"""The deploy/ process commands, run directly (no container engine here): gunicorn with
deploy/gunicorn.conf.py, the default and GPU Celery workers and beat, exactly as the systemd
units start them, on the embedded default (SQLite, filesystem broker). The stack is ready
once /readyz sees every queue consumed and beat alive; SIGTERM stops each cleanly."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import REPO_ROOT
from .test_compose import systemd_command

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def unit_argv(unit: str) -> list[str]:
    argv = systemd_command(unit)
    argv = [a.replace("%%h", "%h").replace("%i", "0") for a in argv]
    return [str(BIN / argv[0]), *argv[1:]]


def test_web_workers_and_beat_start_report_ready_and_stop(tmp_path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    env.update({"VAR_DIR": str(tmp_path / "var"), "MEDIA_ROOT": str(tmp_path / "media"), "DEBUG": "false",
                "SECRET_KEY": "process-test-" + "x" * 40, "ALLOWED_HOSTS": "127.0.0.1",
                "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "2",
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"), "MONITORING_HEARTBEAT_INTERVAL": "1",
                "MONITORING_HEARTBEAT_TIMEOUT": "10", "OMP_NUM_THREADS": "1", "RETRAIN_AFTER_CLASSIFICATIONS": "0"})
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=env,
                   check=True, timeout=120)
    commands = {name: unit_argv(f"galaxy-{name}.service")
                for name in ("web", "worker-default", "worker-gpu@", "beat")}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, argv in commands.items():
            log = open(tmp_path / f"{name}.log", "w")
            processes[name] = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        report: dict = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status, body = get(f"{base}/readyz")
            if status == 200 and (report := json.loads(body))["status"] == "ok":
                break
            assert all(p.poll() is None for p in processes.values()), logs(tmp_path)
            time.sleep(0.5)
        assert report.get("status") == "ok", f"{report}\n{logs(tmp_path)}"
        assert get(f"{base}/healthz") == (200, b'{"status": "ok"}')
        workers = report["checks"]["workers"]
        assert workers["queues"]["gpu"] == [f"gpu0@{socket.gethostname()}"]
        assert workers["queues"]["default"] == [f"default@{socket.gethostname()}"]
        status, metrics = get(f"{base}/metrics")
        assert status == 200 and b'galaxy_celery_workers_alive{queue="gpu"} 1.0' in metrics
        assert b"django_http_requests_total_by_view_transport_method_total" in metrics
    finally:
        # SIGTERM to the main process only, as `docker stop`, Kubernetes and systemd's
        # KillMode=mixed do (a pool child that gets it too would die mid-task).
        for process in processes.values():
            process.terminate()
        exit_codes = {}
        for name, process in processes.items():
            try:
                exit_codes[name] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                exit_codes[name] = "hung"
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)
    assert exit_codes == dict.fromkeys(commands, 0), f"{exit_codes}\n{logs(tmp_path)}"
    with sqlite3.connect(tmp_path / "var" / "db.sqlite3") as db:
        assert db.execute("SELECT name FROM monitoring_workerheartbeat").fetchall() == []


def logs(tmp_path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(tmp_path.glob("*.log")))
