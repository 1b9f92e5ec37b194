"""core.middleware.CSPMiddleware sets exactly django-csp's headers, built once: the same policy
on API and page responses, none under the excluded /admin/ prefix, and a response with a policy
of its own (django-csp's decorators) or a nonce still handled by the library."""

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, NONCE, SELF
from csp.middleware import CSPMiddleware as LibraryMiddleware
from django.http import HttpResponse, JsonResponse
from django.test import RequestFactory

from core.middleware import CSPMiddleware


def both(path: str, make_response, prepare=lambda request: None) -> tuple[HttpResponse, HttpResponse]:
    out = []
    for middleware_class in (CSPMiddleware, LibraryMiddleware):
        request = RequestFactory().get(path)
        middleware = middleware_class(lambda request: make_response())
        middleware.process_request(request)
        prepare(request)
        out.append(middleware.process_response(request, make_response()))
    return out[0], out[1]


def parsed(policy: str | None) -> set[str] | None:
    return None if policy is None else {part.strip() for part in policy.split(";")}


@pytest.mark.parametrize("path", ["/api/workflows/gz2/next/", "/classify/gz2/", "/admin/"])
def test_the_same_headers_as_django_csp(path):
    ours, library = both(path, lambda: JsonResponse({}))
    for header in (HEADER, HEADER_REPORT_ONLY):
        assert parsed(ours.get(header)) == parsed(library.get(header)), header
    assert (ours.get(HEADER) is None) == path.startswith("/admin/")


def test_a_policy_change_is_seen(settings):
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": ["'none'"]}}
    ours, _ = both("/api/", lambda: JsonResponse({}))
    assert ours[HEADER] == "default-src 'none'"


def test_a_response_with_its_own_policy_or_a_nonce_is_left_to_django_csp(settings):
    def own_policy():
        response = HttpResponse()
        response._csp_update = {"img-src": ["https://example.org"]}
        return response

    ours, library = both("/classify/gz2/", own_policy)
    assert "https://example.org" in ours[HEADER] and parsed(ours[HEADER]) == parsed(library[HEADER])
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"script-src": [SELF, NONCE]}}
    ours, _ = both("/classify/gz2/", HttpResponse, prepare=lambda request: str(request.csp_nonce))
    assert "'nonce-" in ours[HEADER]


def test_an_exempt_response_or_one_with_a_header_keeps_it():
    def exempt():
        response = HttpResponse()
        response._csp_exempt = True
        return response

    def preset():
        response = HttpResponse()
        response[HEADER] = "default-src 'self' https://cdn.example.org"
        return response

    assert HEADER not in both("/classify/gz2/", exempt)[0]
    assert both("/classify/gz2/", preset)[0][HEADER] == "default-src 'self' https://cdn.example.org"
