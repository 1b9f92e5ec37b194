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
# A worker whose main loop stops answering for `timeout` s is killed and replaced. With gthread
# that catches a wedged process, not one stuck request thread: those are bounded where they
# wait: the broker and cache sockets time out after 1 s (settings, core.broker).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
# On restart or recycle, requests in flight get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 20))
# Recycle each worker after about this many requests (jittered so they do not all restart at
# once): bounds the memory a slow leak or a fragmented heap (torch, numpy) can take.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 500))
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
