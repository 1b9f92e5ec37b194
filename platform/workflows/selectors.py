"""Reads for workflows."""

from django.db import connection
from django.db.models import QuerySet

from core.db import hot_path_cursor

from .models import Workflow


def active_workflows() -> QuerySet[Workflow]:
    return Workflow.objects.filter(is_active=True)


# Every column but the tree document and the description (both loaded on access if needed).
_SETTING_FIELDS = ("id", "slug", "name", "tree_hash", "version", "retirement_count", "random_fraction",
                   "early_retirement", "retirement_agreement", "is_active", "created_at", "updated_at")
#: The columns workflow_from_row reads, in its order, for statements that fetch the workflow
#: together with other rows (table alias ``w``).
SETTINGS_COLUMNS = ", ".join(f"w.{Workflow._meta.get_field(name).column}" for name in _SETTING_FIELDS)
_SETTINGS_SQL = f"SELECT {SETTINGS_COLUMNS} FROM {Workflow._meta.db_table} w WHERE w.slug = %s"
_BY_SLUG: dict[str, tuple[tuple, Workflow]] = {}


def workflow_settings(*, slug: str) -> Workflow | None:
    """The workflow for the volunteer API's hot paths, read fresh on every call with one narrow
    query (no tree, no ORM compilation); while the row is unchanged the same instance comes
    back, so its parsed tree stays warm. Shared between requests: read-only."""
    with hot_path_cursor() as cursor:
        cursor.execute(_SETTINGS_SQL, [slug])
        row = cursor.fetchone()
    return None if row is None else workflow_from_row(slug=slug, row=tuple(row))


def last_known_id(*, slug: str) -> int | None:
    """The id this process last read for the slug: a hint for a statement that reads the
    workflow's row itself (by id and slug) in the same round trip as other work."""
    cached = _BY_SLUG.get(slug)
    return cached[1].id if cached is not None else None


def workflow_from_row(*, slug: str, row: tuple) -> Workflow:
    """The workflow of a SETTINGS_COLUMNS row read just now: the cached instance while the row
    is unchanged, else a new one."""
    cached = _BY_SLUG.get(slug)
    if cached is not None and cached[0] == row:
        return cached[1]
    converted = [_from_db(name, value) for name, value in zip(_SETTING_FIELDS, row, strict=True)]
    workflow = Workflow.from_db(connection.alias, list(_SETTING_FIELDS), converted)
    _BY_SLUG[slug] = (row, workflow)
    return workflow


def _from_db(name: str, value):
    field = Workflow._meta.get_field(name)
    for converter in (*connection.ops.get_db_converters(field.get_col(Workflow._meta.db_table)),
                      *field.get_db_converters(connection)):
        value = converter(value, field.get_col(Workflow._meta.db_table), connection)
    return value
