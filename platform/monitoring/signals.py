"""Receivers: count classifications for the metrics, and keep a heartbeat row per Celery
process. Heartbeats are written by a daemon thread of the worker's main process (started
once the worker is ready, so after the prefork pool has forked), every
``MONITORING_HEARTBEAT_INTERVAL`` s; a clean shutdown removes the row."""

import atexit
import logging
import os
import socket
import threading

from celery.signals import beat_init, worker_ready, worker_shutdown
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.dispatch import receiver
from django.utils import timezone

from classifications.signals import classification_counted

from . import services
from .metrics import CLASSIFICATIONS_COUNTED, workflow_slug

logger = logging.getLogger(__name__)


@receiver(classification_counted, dispatch_uid="monitoring_count_classification")
def count_classification(sender, *, workflow_id: int, classification_id: int, **kwargs) -> None:
    slug = workflow_slug(workflow_id)
    transaction.on_commit(lambda: CLASSIFICATIONS_COUNTED.labels(workflow=slug).inc())


class HeartbeatThread(threading.Thread):
    def __init__(self, *, name: str, role: str, queues: list[str]) -> None:
        super().__init__(name=f"heartbeat-{name}", daemon=True)
        self.node_name, self.role, self.queues = name, role, queues
        self.pid, self.started_at = os.getpid(), timezone.now()
        self.stopped = threading.Event()

    def beat(self) -> None:
        close_old_connections()
        try:
            services.record_heartbeat(name=self.node_name, role=self.role, queues=self.queues,
                                      hostname=socket.gethostname(), pid=self.pid, started_at=self.started_at)
        except DatabaseError:
            logger.warning("heartbeat of %s not recorded", self.node_name, exc_info=True)

    def run(self) -> None:
        while True:
            self.beat()
            if self.stopped.wait(settings.MONITORING_HEARTBEAT_INTERVAL):
                break
        close_old_connections()
        try:
            services.forget_worker(name=self.node_name, pid=self.pid)
        except DatabaseError:
            logger.warning("heartbeat of %s not removed", self.node_name, exc_info=True)


_threads: list[HeartbeatThread] = []


def start_heartbeat(*, name: str, role: str, queues: list[str]) -> HeartbeatThread:
    if not _threads:
        atexit.register(stop_heartbeats)  # beat has no shutdown signal; SIGTERM exits through atexit
    thread = HeartbeatThread(name=name, role=role, queues=queues)
    _threads.append(thread)
    thread.start()
    return thread


def stop_heartbeats() -> None:
    while _threads:
        thread = _threads.pop()
        thread.stopped.set()
        thread.join(timeout=5)


@worker_ready.connect(dispatch_uid="monitoring_worker_heartbeat")
def on_worker_ready(sender, **kwargs) -> None:
    queues = sorted(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    start_heartbeat(name=sender.hostname, role="worker", queues=queues)


@beat_init.connect(dispatch_uid="monitoring_beat_heartbeat")
def on_beat_init(sender, **kwargs) -> None:
    start_heartbeat(name=f"beat@{socket.gethostname()}", role="beat", queues=[])


@worker_shutdown.connect(dispatch_uid="monitoring_worker_shutdown")
def on_worker_shutdown(sender, **kwargs) -> None:
    stop_heartbeats()
