"""The API's JSON parser: what json.load accepts but the platform cannot store is refused here,
at the boundary, as a 400 naming the rule, before any view or service sees the body."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32  # the deepest body any endpoint takes is 4 levels (batch > item > annotations > answer)


def _unstorable(text: str) -> str | None:
    if "\x00" in text:
        return "text must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text must be valid Unicode (no unpaired surrogates such as \\ud800)"
    return None


def check_storable(data: Any) -> None:
    """Raise ParseError for nesting deeper than MAX_DEPTH or text no database column can hold."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if problem := _unstorable(value):
                raise ParseError(f"JSON parse error - {problem}")
        elif isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and (problem := _unstorable(key)):
                    raise ParseError(f"JSON parse error - {problem}")
                stack.append((item, depth + 1))


class SafeJSONParser(JSONParser):
    """DRF's parser with a size cap (DATA_UPLOAD_MAX_MEMORY_SIZE), refusing NaN/Infinity, and
    turning the RecursionError of a deeply nested body (a 500 in the stock parser) into a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if stream is None:
            raw = b""
        else:
            raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise ParseError(f"JSON parse error - body larger than {limit} bytes")
        try:
            data = json.loads(raw.decode(encoding), parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        check_storable(data)
        return data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
