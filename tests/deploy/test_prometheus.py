"""deploy/prometheus/alerts.yaml: promtool accepts the rules, its unit tests (alerts.test.yaml)
show each alert fires when it should and not otherwise, and every metric the rules read is one
the platform exports (scraped from /metrics here)."""

import re
import subprocess

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from .conftest import DEPLOY

ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
PROMQL_WORDS = {"min", "max", "sum", "by", "and", "on", "rate", "deriv", "or", "unless", "without", "avg"}


def test_promtool_checks_the_rules(tool):
    out = subprocess.run([tool("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_unit_tests_of_the_alerts(tool):
    out = subprocess.run([tool("promtool"), "test", "rules", str(DEPLOY / "prometheus" / "alerts.test.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_issues_four_alerts_are_shipped():
    names = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    assert {"NoClassificationsWhileVisitorsActive", "CeleryQueueGrowing", "TrainingRunStuck",
            "NoLiveGpuWorker"} <= names


@pytest.mark.django_db
def test_rules_read_only_exported_metrics(client):
    client.get("/api/workflows/gz-decals-dr5/next/")  # so the per-view request counter has a sample
    exported = set()
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        exported.add(family.name)  # declared even while it has no sample (no run in progress)
        exported.update(sample.name for sample in family.samples)
    expressions = [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    without_labels = [re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr) for expr in expressions]
    read = {word for expr in without_labels for word in re.findall(r"[a-z_][a-z0-9_]*", expr)
            if "_" in word and word not in PROMQL_WORDS}
    assert read and read <= exported, read - exported
    assert "galaxy_celery_workers_alive" in read and "django_http_requests_total_by_view_transport_method_total" in read
