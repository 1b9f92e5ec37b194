"""Bounded pages: every list endpoint serves at most MAX_PAGE_SIZE rows (an unbounded `limit`
let one request build 32 MB and 400 MB of worker memory), and a bad limit/offset is a 400."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination

from .errors import BadQueryParameter

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 10**9


def _query_int(request, name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQueryParameter(f"must be an integer, got '{raw[:40]}'", field=name) from None
    if not minimum <= value <= maximum:
        raise BadQueryParameter(f"must be between {minimum} and {maximum}, got {value}", field=name)
    return value


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    default_limit = DEFAULT_PAGE_SIZE
    max_limit = MAX_PAGE_SIZE

    def get_limit(self, request) -> int:
        return _query_int(request, self.limit_query_param, default=self.default_limit, minimum=1,
                          maximum=self.max_limit)

    def get_offset(self, request) -> int:
        return _query_int(request, self.offset_query_param, default=0, minimum=0, maximum=MAX_OFFSET)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        bounds = {self.limit_query_param: {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit},
                  self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET, "default": 0}}
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return parameters
