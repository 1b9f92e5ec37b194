"""Request rates on the shared cache (settings.CACHES: Redis in production, so every process
counts together). Each throttled view names a ``throttle_scope``; two counters apply to it:
one per volunteer (the user, or the client address for anonymous requests) and one per address
(``<scope>_ip``, higher, since a classroom shares one address)."""

from __future__ import annotations

import time
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


@lru_cache(maxsize=1)
def _redis():
    """The cache's Redis as a plain client (one per process, thread-safe), or None on another cache."""
    config = settings.CACHES["default"]
    if not config["BACKEND"].endswith("RedisCache"):
        return None
    import redis

    return redis.Redis.from_url(config["LOCATION"], **config.get("OPTIONS", {}))


def _increment(windows: list[tuple[str, int]]) -> list[int]:
    """Add one to each ``(key, seconds)`` counter and return the new counts; a counter starts
    at its first increment and expires with its window."""
    client = _redis()
    if client is not None:
        pipeline = client.pipeline(transaction=False)
        for key, seconds in windows:
            pipeline.incr(key)
            pipeline.expire(key, seconds + 1)
        return pipeline.execute()[::2]
    counts = []
    for key, seconds in windows:
        cache.add(key, 0, seconds + 1)
        try:
            counts.append(cache.incr(key))
        except ValueError:  # expired between the two calls
            cache.set(key, 1, seconds + 1)
            counts.append(1)
    return counts


class ScopedThrottle(SimpleRateThrottle):
    """Both counters of a view's scope as fixed-window counts. DRF's own throttles keep each
    key's list of request times and write it back whole: two cache round trips per counter that
    race between processes, and at 600/min a pickled list of 600 floats on every request (with
    Django's Redis cache also a new client object per call). Here each counter is an atomic
    increment and on Redis both go in one pipelined round trip. A fixed window lets at most
    twice the rate through across a window boundary. Rates are read per request (settings can
    change them, e.g. in tests); views without a scope are not throttled."""

    def __init__(self) -> None:  # the rates are per scope, read in allow_request
        self.waits: list[float] = []

    def allow_request(self, request, view) -> bool:
        scope = getattr(view, "throttle_scope", None)
        if not scope:
            return True
        address = self.get_ident(request)
        user = getattr(request, "user", None)
        volunteer = f"user{user.pk}" if user is not None and user.is_authenticated else address
        now = time.time()
        limits = []
        for name, ident in ((scope, volunteer), (f"{scope}_ip", address)):
            if (rate := api_settings.DEFAULT_THROTTLE_RATES.get(name)) is not None:
                allowed, seconds = self.parse_rate(rate)
                window = int(now // seconds)
                limits.append((f"throttle:{name}:{ident}:{window}", seconds, allowed, (window + 1) * seconds - now))
        counts = _increment([(key, seconds) for key, seconds, _, _ in limits])
        self.waits = [wait for (_, _, allowed, wait), count in zip(limits, counts, strict=True) if count > allowed]
        return not self.waits

    def wait(self) -> float | None:
        return max(self.waits) if self.waits else None
