"""/metrics: the request metrics of django-prometheus plus the platform's own, each read back
from the exposition text a Prometheus server would scrape."""

import datetime as dt
import uuid

import pytest
from celery import current_app
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from monitoring import services
from retraining.models import ModelVersion, TrainingRun
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def decals(db) -> Workflow:
    return Workflow.objects.get(slug="gz-decals-dr5")


def submit(galaxy) -> int:
    response = volunteer_client().post("/api/classifications/", {
        "workflow": "gz-decals-dr5", "galaxy": galaxy.id_str, "annotations": decals_smooth_path(),
        "idempotency_key": uuid.uuid4().hex}, format="json")
    assert response.status_code == 201
    return response.json()["id"]


def test_counted_classifications_and_request_metrics(client, decals, django_capture_on_commit_callbacks):
    before = value(scrape(client), "galaxy_classifications_counted_total", workflow=decals.slug) or 0
    galaxy = GalaxyFactory()
    with django_capture_on_commit_callbacks(execute=True):
        submit(galaxy)
        submit(galaxy)  # each APIClient is a new anonymous volunteer: both count
    samples = scrape(client)
    assert value(samples, "galaxy_classifications_counted_total", workflow=decals.slug) == before + 2
    assert value(samples, "django_http_requests_total_by_view_transport_method_total",
                 view="classification-create", transport="http", method="POST") >= 2
    assert value(samples, "galaxy_seconds_since_last_counted_classification") < 60


def test_queue_depth_per_queue(client, settings):
    queue = f"monitoring-test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ROUTES = {**settings.CELERY_TASK_ROUTES, "monitoring.test.*": {"queue": queue}}
    assert value(scrape(client), "galaxy_celery_queue_length", queue=queue) == 0
    try:
        for _ in range(3):
            current_app.send_task("monitoring.test.noop", queue=queue)
        samples = scrape(client)
        assert value(samples, "galaxy_celery_queue_length", queue=queue) == 3
        assert value(samples, "galaxy_celery_broker_up") == 1
    finally:
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)
    assert value(scrape(client), "galaxy_celery_queue_length", queue=queue) == 0


def test_dead_broker_is_a_value_not_a_failed_scrape(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    samples = scrape(client)
    assert value(samples, "galaxy_celery_broker_up") == 0
    assert not any(name == "galaxy_celery_queue_length" for name, _ in samples)


def test_live_workers_per_queue(client):
    now = timezone.now()
    services.record_heartbeat(name="gpu0@h", role="worker", queues=["gpu"], hostname="h", pid=1, started_at=now)
    services.record_heartbeat(name="beat@h", role="beat", queues=[], hostname="h", pid=2, started_at=now)
    samples = scrape(client)
    assert value(samples, "galaxy_celery_workers_alive", queue="gpu") == 1
    assert value(samples, "galaxy_celery_workers_alive", queue="default") == 0
    assert value(samples, "galaxy_celery_beat_alive") == 1


def make_run(workflow, **fields) -> TrainingRun:
    return TrainingRun.objects.create(workflow=workflow, workflow_version=workflow.version,
                                      tree_hash=workflow.tree_hash, trigger="admin", **fields)


def test_training_runs_and_active_model_version(client, decals):
    start = timezone.now() - dt.timedelta(hours=3)
    for minutes, status in ((10, "succeeded"), (90, "succeeded"), (2, "failed")):
        make_run(decals, status=status, stage="done", started_at=start,
                 finished_at=start + dt.timedelta(minutes=minutes))
    running = make_run(decals, status="running", stage="training", started_at=start,
                       heartbeat_at=timezone.now() - dt.timedelta(minutes=20))
    ModelVersion.objects.create(workflow=decals, number=4, checkpoint="models/x.pt", checkpoint_sha256="0" * 64,
                                tree_hash=decals.tree_hash, answer_columns=[], predictions_complete=True,
                                is_active=True, activated_at=timezone.now())
    samples = scrape(client)
    assert value(samples, "galaxy_active_model_version", workflow=decals.slug) == 4
    histogram = {"workflow": decals.slug, "status": "succeeded"}
    assert value(samples, "galaxy_training_run_duration_seconds_count", **histogram) == 2
    assert value(samples, "galaxy_training_run_duration_seconds_sum", **histogram) == 100 * 60
    assert value(samples, "galaxy_training_run_duration_seconds_bucket", le="900.0", **histogram) == 1
    assert value(samples, "galaxy_training_run_duration_seconds_bucket", le="+Inf", **histogram) == 2
    assert value(samples, "galaxy_training_run_duration_seconds_count", workflow=decals.slug, status="failed") == 1
    age = value(samples, "galaxy_training_run_heartbeat_age_seconds", workflow=decals.slug, run=str(running.pk),
                stage="training")
    assert 20 * 60 <= age < 21 * 60
