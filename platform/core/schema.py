"""OpenAPI additions every operation shares: the error answers any API request can get, so
clients (and the schema fuzz test) know them, and integer path ids with their bounds."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "An error: `code` and `message` (platform errors add `field` and the rule's details); "
                   "DRF's own errors carry `detail` or one list of messages per field.",
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"},
                   "detail": {}},
    "additionalProperties": True,
}
ERROR_RESPONSES = {
    "400": "Invalid request: the body or a parameter breaks a rule",
    "401": "Authentication credentials were not provided or are invalid",
    "403": "Not allowed for this user",
    "404": "No such object",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "409": "Conflicts with the current state",
    "415": "Unsupported media type",
    "429": "Too many requests: retry after the Retry-After header's seconds",
    "503": "The database is unavailable: retry after the Retry-After header's seconds",
}
SLUG_PATTERN = "^[-a-zA-Z0-9_]+$"  # Django's slug path converter
MAX_ID = 10**18 - 1  # config.urls takes ids of at most 18 digits (inside the bigint range); longer is a 404


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_RESPONSES.items():
                responses.setdefault(code, {"description": description,
                                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path":
                    continue
                if parameter.get("schema", {}).get("type") == "integer":
                    parameter["schema"].update({"minimum": 0, "maximum": MAX_ID})
                elif parameter["name"] == "slug":
                    parameter["schema"]["pattern"] = SLUG_PATTERN
    return result
