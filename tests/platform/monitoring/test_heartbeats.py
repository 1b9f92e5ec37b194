"""Heartbeat rows: one per Celery process name, refreshed in place, removed on a clean
shutdown only by the process that owns the name, forgotten a day after they stop."""

import datetime as dt

import pytest
from django.utils import timezone

from monitoring import selectors, services
from monitoring.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def record(name: str, pid: int, queues=("gpu",)) -> WorkerHeartbeat:
    return services.record_heartbeat(name=name, role="worker", queues=list(queues), hostname="h", pid=pid,
                                     started_at=timezone.now())


def test_heartbeat_is_refreshed_in_place():
    first = record("gpu0@h", 10)
    WorkerHeartbeat.objects.filter(pk=first.pk).update(last_seen_at=timezone.now() - dt.timedelta(minutes=5))
    again = record("gpu0@h", 11, queues=("gpu", "default"))
    assert WorkerHeartbeat.objects.count() == 1
    assert again.pk == first.pk and again.pid == 11 and again.queues == ["default", "gpu"]
    assert [h.name for h in selectors.live_workers()] == ["gpu0@h"]


def test_clean_shutdown_removes_only_its_own_row():
    record("gpu0@h", 10)
    services.forget_worker(name="gpu0@h", pid=99)  # an older process with that name
    assert WorkerHeartbeat.objects.filter(name="gpu0@h").exists()
    services.forget_worker(name="gpu0@h", pid=10)
    assert not WorkerHeartbeat.objects.exists()


def test_long_dead_processes_are_forgotten_and_stale_ones_not_live(settings):
    record("old@h", 1)
    record("stale@h", 2)
    WorkerHeartbeat.objects.filter(name="old@h").update(last_seen_at=timezone.now() - dt.timedelta(days=2))
    WorkerHeartbeat.objects.filter(name="stale@h").update(
        last_seen_at=timezone.now() - dt.timedelta(seconds=settings.MONITORING_HEARTBEAT_TIMEOUT + 1))
    record("new@h", 3)
    assert sorted(WorkerHeartbeat.objects.values_list("name", flat=True)) == ["new@h", "stale@h"]
    assert [h.name for h in selectors.live_workers()] == ["new@h"]
