"""The probes: liveness touches nothing; readiness reports each dependency and fails (503)
only for what serving needs."""

import datetime as dt
import os
import uuid

import pytest
from django.utils import timezone

from monitoring import services
from monitoring.models import WorkerHeartbeat
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client

pytestmark = pytest.mark.django_db


def beat(name: str, role: str, queues: list[str], *, age_seconds: float = 0) -> None:
    services.record_heartbeat(name=name, role=role, queues=queues, hostname="host", pid=os.getpid(),
                              started_at=timezone.now())
    WorkerHeartbeat.objects.filter(name=name).update(
        last_seen_at=timezone.now() - dt.timedelta(seconds=age_seconds))


def test_liveness_answers_without_a_query(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readiness_is_degraded_while_a_queue_has_no_live_worker(client):
    beat("default@a", "worker", ["default"])
    beat("gpu0@b", "worker", ["gpu"], age_seconds=3600)  # died an hour ago
    beat("beat@a", "beat", [])
    body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    workers = body["checks"]["workers"]
    assert workers["queues"] == {"default": ["default@a"], "gpu": []}
    assert workers["queues_without_worker"] == ["gpu"] and workers["beat"] == ["beat@a"]
    assert all(body["checks"][name]["ok"] for name in ("database", "broker", "storage"))


def test_readiness_is_ok_with_every_queue_consumed_and_beat_alive(client):
    beat("default@a", "worker", ["default"])
    beat("gpu0@b", "worker", ["gpu", "default"])
    beat("beat@a", "beat", [])
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"]["workers"]["queues"]["default"] == ["default@a", "gpu0@b"]


def test_unreachable_broker_fails_readiness_quickly(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/readyz")
    assert response.status_code == 503
    broker = response.json()["checks"]["broker"]
    assert broker["ok"] is False and "Connection" in broker["error"]
    assert response.json()["checks"]["database"]["ok"] is True


def test_unwritable_storage_fails_readiness(client, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    settings.MEDIA_ROOT = blocker / "media"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "error"
    assert response.json()["checks"]["storage"]["ok"] is False


def test_storage_check_leaves_no_file_behind(client, settings):
    client.get("/readyz")
    assert not any((settings.MEDIA_ROOT / "monitoring").glob("*"))


def test_time_since_last_counted_classification(client, settings):
    body = client.get("/readyz").json()
    assert body["classifications"]["last_counted_at"] is None
    assert body["classifications"]["seconds_since_last_counted"] == settings.MONITORING_CLASSIFICATION_LOOKBACK
    galaxy = GalaxyFactory()
    created = volunteer_client().post("/api/classifications/", {
        "workflow": "gz-decals-dr5", "galaxy": galaxy.id_str, "annotations": decals_smooth_path(),
        "idempotency_key": uuid.uuid4().hex}, format="json")
    assert created.status_code == 201
    body = client.get("/readyz").json()
    assert body["classifications"]["last_counted_at"] is not None
    assert 0 <= body["classifications"]["seconds_since_last_counted"] < 60
