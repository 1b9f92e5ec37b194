"""Probe and scrape endpoints. Liveness touches nothing (a slow database must not get web
pods killed); readiness checks what serving needs; /metrics is for Prometheus (nginx only
lets the internal network reach it)."""

from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from . import metrics, selectors


@never_cache
@require_GET
def healthz(request) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request) -> JsonResponse:
    report = selectors.readiness_report()
    return JsonResponse(report, status=503 if report["status"] == "error" else 200)


@never_cache
@require_GET
def prometheus_metrics(request) -> HttpResponse:
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)
