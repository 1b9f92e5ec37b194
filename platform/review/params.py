"""Parsing the review queue's query string (shared by the API and the workbench pages)."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter

from . import selectors
from .errors import InvalidQuery
from .serializers import ConeInput, parse

RA_SCHEMA = {"type": "number", "minimum": 0, "maximum": 360}
DEC_SCHEMA = {"type": "number", "minimum": -90, "maximum": 90}
RADIUS_SCHEMA = {"type": "number", "minimum": 0, "maximum": settings.REVIEW_MAX_CONE_DEG}


def parse_int(params, name: str, default: int, *, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidQuery(f"{name} must be an integer", field=name)
    if not low <= value <= high:
        raise InvalidQuery(f"{name} must be in [{low}, {high}]", field=name)
    return value


def _bounds(params, name: str) -> dict[str, float]:
    """``name=column:value`` (repeatable, or comma-separated) → {column: value}."""
    bounds = {}
    for item in (part for raw in params.getlist(name) for part in raw.split(",") if part):
        column, sep, value = item.partition(":")
        try:
            bounds[column.strip()] = float(value)
        except ValueError:
            raise InvalidQuery(f"{name}: expected answer_column:number, got {item!r}", field=name)
        if not sep or not 0 <= bounds[column.strip()] <= 1:
            raise InvalidQuery(f"{name}: a fraction bound must be answer_column:number in [0, 1], got {item!r}",
                               field=name)
    return bounds


def _choice(params, name: str, choices: tuple[str, ...]) -> str | None:
    value = params.get(name) or None
    if value is not None and value not in choices:
        raise InvalidQuery(f"{name} must be one of {', '.join(choices)}", field=name)
    return value


def parse_queue_query(params) -> tuple[selectors.QueueQuery, dict[int, float] | None]:
    """The queue's query string → a QueueQuery (and each cone galaxy's separation)."""
    sort = _choice(params, "sort", selectors.SORTS) or "bald"
    order = _choice(params, "order", ("asc", "desc")) or "desc"
    retired = _choice(params, "retired", ("yes", "no"))
    separations = None
    galaxy_ids = None
    if any(params.get(name) not in (None, "") for name in ("ra", "dec", "radius")):
        cone = parse(ConeInput, {name: params.get(name) for name in ("ra", "dec", "radius")})
        found = selectors.cone(ra=cone["ra"], dec=cone["dec"], radius_deg=cone["radius"])
        separations = dict(found)
        galaxy_ids = tuple(separations)
    if text := (params.get("q") or "").strip():
        named = set(selectors.find_galaxies(text=text))
        galaxy_ids = tuple(g for g in galaxy_ids if g in named) if galaxy_ids is not None else tuple(named)
    query = selectors.QueueQuery(
        sort=sort, descending=order == "desc", answer=params.get("answer") or None,
        minimums=_bounds(params, "min"), maximums=_bounds(params, "max"), survey=params.get("survey") or None,
        flag=_choice(params, "flag", selectors.FLAG_FILTERS), expert=_choice(params, "expert", selectors.EXPERT_FILTERS),
        retired=None if retired is None else retired == "yes", galaxy_ids=galaxy_ids,
        page=parse_int(params, "page", 1, low=1, high=100_000),
        page_size=parse_int(params, "page_size", settings.REVIEW_PAGE_SIZE, low=1, high=settings.REVIEW_MAX_PAGE_SIZE))
    return query, separations


QUEUE_PARAMETERS = [
    OpenApiParameter("sort", str, enum=list(selectors.SORTS), description="Default bald."),
    OpenApiParameter("order", str, enum=["asc", "desc"]),
    OpenApiParameter("answer", str, description="Answer column for sort=width, e.g. bar_strong."),
    OpenApiParameter("min", str, many=True, description="Predicted fraction ≥ bound: column:value, e.g. bar_strong:0.5"),
    OpenApiParameter("max", str, many=True, description="Predicted fraction ≤ bound: column:value"),
    OpenApiParameter("survey", str), OpenApiParameter("flag", str, enum=list(selectors.FLAG_FILTERS)),
    OpenApiParameter("expert", str, enum=list(selectors.EXPERT_FILTERS)),
    OpenApiParameter("retired", str, enum=["yes", "no"]),
    OpenApiParameter("ra", RA_SCHEMA), OpenApiParameter("dec", DEC_SCHEMA),
    OpenApiParameter("radius", RADIUS_SCHEMA, description="Cone radius, degrees"),
    OpenApiParameter("q", str, description="Galaxy name (id_str, exact or prefix) or numeric id"),
    OpenApiParameter("page", {"type": "integer", "minimum": 1, "maximum": 100_000}),
    OpenApiParameter("page_size", {"type": "integer", "minimum": 1, "maximum": settings.REVIEW_MAX_PAGE_SIZE}),
]
