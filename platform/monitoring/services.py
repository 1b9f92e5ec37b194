"""Writes of the monitoring app: the Celery processes' heartbeats."""

import datetime as dt

from django.db import transaction
from django.utils import timezone

from .models import WorkerHeartbeat

#: Rows of processes gone this long are dropped (a restarted worker gets a new pid, not a new name).
FORGET_AFTER = dt.timedelta(days=1)


@transaction.atomic
def record_heartbeat(*, name: str, role: str, queues: list[str], hostname: str, pid: int,
                     started_at: dt.datetime) -> WorkerHeartbeat:
    now = timezone.now()
    heartbeat, _ = WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"role": role, "queues": sorted(queues), "hostname": hostname, "pid": pid,
                             "started_at": started_at, "last_seen_at": now})
    WorkerHeartbeat.objects.filter(last_seen_at__lt=now - FORGET_AFTER).delete()
    return heartbeat


@transaction.atomic
def forget_worker(*, name: str, pid: int) -> None:
    """A clean shutdown removes the process's row at once (only if no newer process took the name)."""
    WorkerHeartbeat.objects.filter(name=name, pid=pid).delete()
