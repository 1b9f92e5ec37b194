"""gunicorn settings: ``gunicorn --pythonpath platform -c deploy/gunicorn.conf.py config.wsgi``.

The same command runs under systemd, in the compose ``web`` service and the Kubernetes web
Deployment; containers set ``GUNICORN_BIND=0.0.0.0:8000`` and ``GUNICORN_WORKERS`` (a
container sees every host core, so the cpu-count default would over-fork there)."""

import multiprocessing
import os
import shutil
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", 4))
timeout = 60
graceful_timeout = 30
accesslog = "-"
# Behind nginx / an ingress on the same pod network: trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus counters of all gunicorn workers are summed through files in this folder
# (prometheus_client multiprocess mode); it must be empty when the master starts.
PROMETHEUS_MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server) -> None:
    if PROMETHEUS_MULTIPROC_DIR:
        shutil.rmtree(PROMETHEUS_MULTIPROC_DIR, ignore_errors=True)
        Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)


def child_exit(server, worker) -> None:
    if PROMETHEUS_MULTIPROC_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
