"""Request rates on the shared cache (settings.CACHES: Redis in production, so every process
counts together). Each throttled view names a ``throttle_scope``; two counters apply to it:
one per volunteer (the user, or the client address for anonymous requests) and one per address
(``<scope>_ip``, higher, since a classroom shares one address)."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class ScopedThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, reading the rates when a request comes (so settings can change
    them, e.g. in tests) and staying off for views without a scope."""

    scope_suffix = ""

    def allow_request(self, request, view):
        scope = getattr(view, self.scope_attr, None)
        if not scope:
            return True
        self.scope = scope + self.scope_suffix
        self.rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super(ScopedRateThrottle, self).allow_request(request, view)


class ScopedIpThrottle(ScopedThrottle):
    scope_suffix = "_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
