"""Sending a Celery task from a web request without letting the broker hold the request.

A broker that accepts connections but never answers hung every submit that fired the retrain
check (issue 15: four such requests took every thread for 6.5 minutes). A request's publish
is one bounded attempt: its own small connection pool whose connections give up after one
connect (``max_retries`` 0), every socket operation bounded by ``BROKER_SOCKET_TIMEOUT``
(settings), no publish retry. After a failure this process sends nothing from requests for
``BROKER_PUBLISH_BACKOFF`` seconds, so a dead broker costs one request the timeout, not every
request. The caller keeps its fallback: what the task would do is checked again later (the
beat task ``retraining.tasks.recheck_triggers``) or the caller reports it."""

from __future__ import annotations

import logging
import threading
import time
from functools import cache

from django.conf import settings

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_paused_until = 0.0  # monotonic time; per process


@cache
def _pool(app):
    options = {**app.conf.broker_transport_options, "max_retries": 0}
    return app.connection_for_write(transport_options=options).Pool(limit=settings.BROKER_REQUEST_POOL_LIMIT)


def publish(task, *args) -> str | None:
    """Send ``task(*args)``; None once the broker took it, else why it was not sent (broker
    unreachable or silent, or it failed in the last backoff period)."""
    global _paused_until
    if time.monotonic() < _paused_until:
        return "the broker failed moments ago; requests send nothing until the backoff ends"
    connection = None
    try:
        connection = _pool(task.app).acquire(block=True, timeout=settings.BROKER_SOCKET_TIMEOUT)
        task.apply_async(args, connection=connection, retry=False)
        return None
    except Exception as exc:  # noqa: BLE001 — any transport error, timeout or exhausted pool
        with _lock:
            _paused_until = time.monotonic() + settings.BROKER_PUBLISH_BACKOFF
        logger.warning("could not send %s%r (%s); no task is sent from requests for %.0f s", task.name, args, exc,
                       settings.BROKER_PUBLISH_BACKOFF)
        if connection is not None:
            connection.collect()  # drop the socket, which may be half-read
        return f"{type(exc).__name__}: {exc}"
    finally:
        if connection is not None:
            connection.release()


def resume_publishing() -> None:
    """End the backoff now (tests; an operator who fixed the broker can also just wait)."""
    global _paused_until
    _paused_until = 0.0
