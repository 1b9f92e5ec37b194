"""Reads for the health endpoints and the metrics: each check is bounded in time, so a dead
broker or database makes the probe answer slowly-but-surely with the failure, not hang."""

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.db import connection
from django.utils import timezone

from classifications.models import Classification
from retraining.models import ModelVersion, TrainingRun

from .models import WorkerHeartbeat

#: kombu's Redis transport keeps priorities 3, 6 and 9 in lists of their own beside the plain one.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)


@dataclass
class Check:
    ok: bool
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"ok": self.ok, **self.detail}


def timed(check: Callable[[], dict]) -> Check:
    """Run one check; any exception is the check's failure, named, never the probe's 500."""
    started = time.monotonic()
    try:
        detail = check()
        ok = detail.pop("ok", True)
    except Exception as exc:  # noqa: BLE001 - a probe reports every failure as data
        ok, detail = False, {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return Check(ok=ok, detail={**detail, "ms": round((time.monotonic() - started) * 1000, 1)})


def configured_queues() -> list[str]:
    """Every queue a task can be routed to (the default one and those in CELERY_TASK_ROUTES)."""
    queues = {settings.CELERY_TASK_DEFAULT_QUEUE}
    queues.update(route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route)
    return sorted(queues)


def broker_url() -> str:
    return settings.CELERY_BROKER_URL


def redis_client():
    import redis

    timeout = settings.MONITORING_BROKER_TIMEOUT
    return redis.Redis.from_url(broker_url(), socket_connect_timeout=timeout, socket_timeout=timeout)


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def check_broker() -> dict:
    url = broker_url()
    scheme = url.split("://", 1)[0]
    if scheme in ("redis", "rediss"):
        redis_client().ping()
    elif scheme == "filesystem":
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not os.access(folder, os.W_OK):
            return {"ok": False, "transport": scheme, "error": f"{folder} is not writable"}
    else:
        from kombu import Connection

        with Connection(url, connect_timeout=settings.MONITORING_BROKER_TIMEOUT) as conn:
            conn.ensure_connection(max_retries=1)
    return {"transport": scheme}


def check_storage() -> dict:
    """Write and delete a small file through the storage API: what workers and uploads need."""
    name = default_storage.save(f"monitoring/readyz-{uuid.uuid4().hex}.txt", ContentFile(b"ok"))
    default_storage.delete(name)
    return {"backend": type(storages["default"]).__name__}


def live_workers(*, now: dt.datetime | None = None) -> list[WorkerHeartbeat]:
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.MONITORING_HEARTBEAT_TIMEOUT)
    return list(WorkerHeartbeat.objects.filter(last_seen_at__gte=cutoff))


def live_workers_by_queue(heartbeats: list[WorkerHeartbeat]) -> dict[str, list[str]]:
    by_queue: dict[str, list[str]] = {queue: [] for queue in configured_queues()}
    for heartbeat in heartbeats:
        if heartbeat.role == WorkerHeartbeat.Role.WORKER:
            for queue in heartbeat.queues:
                by_queue.setdefault(queue, []).append(heartbeat.name)
    return by_queue


def check_workers() -> dict:
    heartbeats = live_workers()
    by_queue = live_workers_by_queue(heartbeats)
    beats = [h.name for h in heartbeats if h.role == WorkerHeartbeat.Role.BEAT]
    missing = [queue for queue, names in by_queue.items() if not names]
    return {"ok": not missing and bool(beats), "queues": by_queue, "beat": beats,
            "queues_without_worker": missing}


def last_counted_classification_at() -> dt.datetime | None:
    """Newest counted classification within the look-back window. The window bounds the scan of
    the created_at index: without it, a quiet site would make every probe walk the whole table."""
    since = timezone.now() - dt.timedelta(seconds=settings.MONITORING_CLASSIFICATION_LOOKBACK)
    return (Classification.objects.filter(counted=True, created_at__gte=since)
            .order_by("-created_at").values_list("created_at", flat=True).first())


def seconds_since(last: dt.datetime | None) -> float:
    """Age of the last counted classification, capped at the look-back window (a site quiet for
    longer reports the window)."""
    if last is None:
        return float(settings.MONITORING_CLASSIFICATION_LOOKBACK)
    return max(0.0, (timezone.now() - last).total_seconds())


def queue_lengths() -> dict[str, int]:
    """Messages waiting per Celery queue: LLEN on Redis, message files for the filesystem
    transport. Other transports: empty (not measured)."""
    queues = configured_queues()
    url = broker_url()
    if url.startswith(("redis://", "rediss://")):
        pipe = redis_client().pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{queue}{REDIS_PRIORITY_SEPARATOR}{step}")
        lengths = pipe.execute()
        per_queue = 1 + len(REDIS_PRIORITY_STEPS)
        return {queue: sum(lengths[i * per_queue:(i + 1) * per_queue]) for i, queue in enumerate(queues)}
    if url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        return {queue: sum(1 for _ in folder.glob(f"*.{queue}.msg")) for queue in queues}
    return {}


def active_model_versions() -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(is_active=True).select_related("workflow"))


def unfinished_runs() -> list[TrainingRun]:
    return list(TrainingRun.objects.filter(status__in=TrainingRun.ACTIVE_STATUSES).select_related("workflow"))


def finished_run_durations() -> list[tuple[str, str, float]]:
    """(workflow slug, status, seconds from start to finish) of every finished run that started."""
    rows = (TrainingRun.objects.filter(status__in=TrainingRun.FINISHED_STATUSES, started_at__isnull=False,
                                       finished_at__isnull=False)
            .values_list("workflow__slug", "status", "started_at", "finished_at"))
    return [(slug, status, (finished - started).total_seconds()) for slug, status, started, finished in rows]


def readiness_report() -> dict:
    """Database, broker and storage decide readiness (HTTP 503 if one fails); missing workers
    only degrade it: a web node without a GPU worker still serves volunteers."""
    critical = {"database": timed(check_database), "broker": timed(check_broker), "storage": timed(check_storage)}
    workers = timed(check_workers) if critical["database"].ok else Check(ok=False, detail={"error": "no database"})
    classifications: dict = {}
    if critical["database"].ok:
        last = last_counted_classification_at()
        classifications = {"last_counted_at": last.isoformat() if last else None,
                           "seconds_since_last_counted": seconds_since(last),
                           "lookback_seconds": settings.MONITORING_CLASSIFICATION_LOOKBACK}
    if not all(check.ok for check in critical.values()):
        status = "error"
    elif not workers.ok:
        status = "degraded"
    else:
        status = "ok"
    return {"status": status,
            "checks": {**{name: check.as_dict() for name, check in critical.items()}, "workers": workers.as_dict()},
            "classifications": classifications}
