"""Guards in front of the API: input no database can take, and a database that is down, become
JSON 4xx/503 answers instead of HTML 500 pages."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
DATABASE_RETRY_AFTER_S = 5


def _has_nul(request) -> bool:
    if "\x00" in request.path:
        return True
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


class ApiGuardMiddleware:
    """A NUL character in an API path or query (PostgreSQL text cannot hold one) is a 400; an API
    path that matches no route a JSON 404; a lost or refused database connection a 503 with
    Retry-After, so clients back off and retry."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX) and _has_nul(request):
            return JsonResponse({"code": "invalid_parameter", "message": "the path and query must not contain "
                                 "NUL characters"}, status=400)
        response = self.get_response(request)
        if (response.status_code == 404 and request.path.startswith(API_PREFIX)
                and not response.get("Content-Type", "").startswith("application/json")):
            # A path no API route matches gets Django's HTML page; API clients get JSON.
            return JsonResponse({"code": "not_found", "message": "no such API path or object"}, status=404)
        return response

    def process_exception(self, request, exception):
        if not (request.path.startswith(API_PREFIX) and isinstance(exception, OperationalError | InterfaceError)):
            return None
        if _timed_out(exception):
            # settings.DATABASE_STATEMENT_TIMEOUT / DATABASE_LOCK_TIMEOUT: the transaction was
            # rolled back whole, so a retry (with the same idempotency key) is safe.
            log.warning("database timeout for %s %s: %s", request.method, request.path, exception)
            body = {"code": "database_busy", "message": "the request waited too long for the database; retry shortly"}
        else:
            log.error("database unavailable for %s %s: %s", request.method, request.path, exception)
            body = {"code": "unavailable", "message": "the database is unavailable; retry shortly"}
        response = JsonResponse(body, status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response


def _timed_out(exception: Exception) -> bool:
    """A statement cancelled by statement_timeout or a lock wait ended by lock_timeout (PostgreSQL
    SQLSTATE 57014 / 55P03), not a lost connection."""
    return getattr(exception.__cause__, "sqlstate", None) in ("57014", "55P03")
