"""Guards in front of the API: input no database can take, and a database that is down, become
JSON 4xx/503 answers instead of HTML 500 pages. And the Content-Security-Policy header, built
once instead of on every response."""

from __future__ import annotations

import http.client
import logging
from functools import cache

from csp import middleware as csp_middleware
from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
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


# Where django-csp's decorators put a view's own policy parts.
_PER_RESPONSE_PARTS = ("_csp_config", "_csp_update", "_csp_replace", "_csp_config_ro", "_csp_update_ro",
                       "_csp_replace_ro")


@cache
def _default_policies() -> tuple[str, str]:
    """The header and the report-only header of settings.CONTENT_SECURITY_POLICY(_REPORT_ONLY)."""
    return build_policy(), build_policy(report_only=True)


@receiver(setting_changed, dispatch_uid="core_csp_policies")
def _policies_changed(sender, *, setting: str, **kwargs) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _default_policies.cache_clear()


class CSPMiddleware(csp_middleware.CSPMiddleware):
    """django-csp's middleware, with the site-wide policy's headers built once per process: the
    library rebuilds them from the settings on every response (~0.2 ms of CPU per API request,
    about 5% of a submit's). A response with a policy of its own (django-csp's decorators) or a
    request that used a nonce is handled by the library itself; otherwise the same headers under
    the same conditions (not on DEBUG error pages, not over a header already set, not for an
    exempt response or an excluded prefix)."""

    def process_response(self, request, response):
        if getattr(request, "_csp_nonce", None) is not None or any(
                hasattr(response, name) for name in _PER_RESPONSE_PARTS):
            return super().process_response(request, response)
        if settings.DEBUG and response.status_code in (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND):
            return response
        for header, policy, exempt, setting in zip(
                (HEADER, HEADER_REPORT_ONLY), _default_policies(), ("_csp_exempt", "_csp_exempt_ro"),
                ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"), strict=True):
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            if (policy and header not in response and getattr(response, exempt, False) is False
                    and not request.path_info.startswith(tuple(prefixes))):
                response[header] = policy
        request.csp_nonce = csp_middleware.CheckableLazyObject(self._csp_nonce_post_response)
        return response
