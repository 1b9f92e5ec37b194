"""Prometheus metrics beyond django-prometheus's request metrics.

The classification counter counts in the process that stored the vote (aggregated over
gunicorn workers through ``PROMETHEUS_MULTIPROC_DIR``). Everything else is read from the
database and the broker at scrape time, so every web replica reports the same values and a
restart loses nothing; alerts aggregate with max/min over replicas."""

import os
import time
from functools import lru_cache

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, multiprocess
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from workflows.models import Workflow

from . import selectors

CLASSIFICATIONS_COUNTED = Counter(
    "galaxy_classifications_counted", "Counted classifications stored by this process.", ["workflow"])

#: Training runs last minutes (fast_cpu preset) to hours (GPU default preset).
RUN_DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, float("inf"))


@lru_cache(maxsize=1024)
def workflow_slug(workflow_id: int) -> str:
    return Workflow.objects.filter(pk=workflow_id).values_list("slug", flat=True).first() or str(workflow_id)


class PlatformCollector(Collector):
    """Queue depth, worker heartbeats, training runs, active model versions, and the age of
    the last counted classification."""

    def collect(self):
        now = time.time()
        broker_up = GaugeMetricFamily("galaxy_celery_broker_up", "1 if the broker answered the queue-length query.")
        try:
            lengths = selectors.queue_lengths()
            broker_up.add_metric([], 1)
        except Exception:  # noqa: BLE001 - a dead broker is reported as a value, not a failed scrape
            lengths = {}
            broker_up.add_metric([], 0)
        yield broker_up
        queue_length = GaugeMetricFamily("galaxy_celery_queue_length", "Messages waiting in a Celery queue.",
                                         labels=["queue"])
        for queue, length in sorted(lengths.items()):
            queue_length.add_metric([queue], length)
        yield queue_length

        heartbeats = selectors.live_workers()
        workers_alive = GaugeMetricFamily("galaxy_celery_workers_alive",
                                          "Workers consuming a queue whose heartbeat is recent.", labels=["queue"])
        for queue, names in sorted(selectors.live_workers_by_queue(heartbeats).items()):
            workers_alive.add_metric([queue], len(names))
        yield workers_alive
        yield GaugeMetricFamily("galaxy_celery_beat_alive", "Beat processes whose heartbeat is recent.",
                                value=sum(1 for h in heartbeats if h.role == "beat"))

        yield GaugeMetricFamily(
            "galaxy_seconds_since_last_counted_classification",
            "Age of the newest counted classification (capped at MONITORING_CLASSIFICATION_LOOKBACK).",
            value=selectors.seconds_since(selectors.last_counted_classification_at()))

        active_version = GaugeMetricFamily("galaxy_active_model_version", "Number of the active model version.",
                                           labels=["workflow"])
        activated = GaugeMetricFamily("galaxy_active_model_activated_timestamp_seconds",
                                      "When the active model version was activated.", labels=["workflow"])
        for version in selectors.active_model_versions():
            active_version.add_metric([version.workflow.slug], version.number)
            if version.activated_at:
                activated.add_metric([version.workflow.slug], version.activated_at.timestamp())
        yield active_version
        yield activated

        run_age = GaugeMetricFamily("galaxy_training_run_age_seconds", "Age of a queued or running training run.",
                                    labels=["workflow", "run", "status", "stage"])
        heartbeat_age = GaugeMetricFamily("galaxy_training_run_heartbeat_age_seconds",
                                          "Seconds since a running run's last heartbeat (or its start).",
                                          labels=["workflow", "run", "stage"])
        for run in selectors.unfinished_runs():
            labels = [run.workflow.slug, str(run.pk)]
            run_age.add_metric([*labels, run.status, run.stage], now - run.created_at.timestamp())
            if run.status == "running":
                last = run.heartbeat_at or run.started_at or run.created_at
                heartbeat_age.add_metric([*labels, run.stage], now - last.timestamp())
        yield run_age
        yield heartbeat_age
        yield run_duration_histogram(selectors.finished_run_durations())


def run_duration_histogram(durations: list[tuple[str, str, float]]) -> HistogramMetricFamily:
    histogram = HistogramMetricFamily("galaxy_training_run_duration_seconds",
                                      "Start-to-finish time of finished training runs.", labels=["workflow", "status"])
    groups: dict[tuple[str, str], list[float]] = {}
    for slug, status, seconds in durations:
        groups.setdefault((slug, status), []).append(seconds)
    for (slug, status), values in sorted(groups.items()):
        buckets = [(floatToGoString(bound), sum(1 for v in values if v <= bound))
                   for bound in RUN_DURATION_BUCKETS]
        histogram.add_metric([slug, status], buckets, sum(values))
    return histogram


PLATFORM_REGISTRY = CollectorRegistry(auto_describe=False)
PLATFORM_REGISTRY.register(PlatformCollector())


def exposition() -> bytes:
    """django-prometheus's and this app's process metrics (summed over gunicorn workers in
    multiprocess mode), then the platform's database-derived metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        process_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(process_registry)
    else:
        process_registry = prometheus_client.REGISTRY
    return prometheus_client.generate_latest(process_registry) + prometheus_client.generate_latest(PLATFORM_REGISTRY)
