"""Reads for workflows."""

from django.db import connection
from django.db.models import QuerySet

from .models import Workflow


def active_workflows() -> QuerySet[Workflow]:
    return Workflow.objects.filter(is_active=True)


# Every column but the tree document and the description (both loaded on access if needed).
_SETTING_FIELDS = ("id", "slug", "name", "tree_hash", "version", "retirement_count", "random_fraction",
                   "early_retirement", "retirement_agreement", "is_active", "created_at", "updated_at")
_SETTINGS_SQL = "SELECT {} FROM {} WHERE slug = %s".format(
    ", ".join(Workflow._meta.get_field(name).column for name in _SETTING_FIELDS), Workflow._meta.db_table)
_BY_SLUG: dict[str, tuple[tuple, Workflow]] = {}


def workflow_settings(*, slug: str) -> Workflow | None:
    """The workflow for the volunteer API's hot paths, read fresh on every call with one narrow
    query (no tree, no ORM compilation); while the row is unchanged the same instance comes
    back, so its parsed tree stays warm. Shared between requests: read-only."""
    with connection.cursor() as cursor:
        cursor.execute(_SETTINGS_SQL, [slug])
        row = cursor.fetchone()
    if row is None:
        return None
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
