"""A cursor for the volunteer API's fixed statements (queue, submit), and the web processes'
bounds on statements and lock waits."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from django.conf import settings
from django.db import connection, connections
from django.db.backends.utils import CursorWrapper


@cache
def _preparing_cursor_class():
    import psycopg

    class PreparingCursor(psycopg.Cursor):
        """Server-side binding, every statement prepared (psycopg keeps them per connection)."""

        def execute(self, query, params=None, *, prepare=None, binary=None):
            return super().execute(query, params, prepare=True, binary=binary)

    return PreparingCursor


@contextmanager
def hot_path_cursor() -> Iterator[CursorWrapper]:
    """Django's cursor; on PostgreSQL one that binds parameters server-side and prepares each
    statement once per connection, because planning the queue's statement took more server
    CPU than running it. Only for fixed SQL whose parameters sit where PostgreSQL can infer
    their type. Connection poolers in transaction mode need PgBouncer ≥ 1.21 for this."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        # Django turns psycopg's statement preparation off (threshold None); any threshold lets
        # this cursor's prepare=True through, and Django's client-side-binding cursors never
        # prepare whatever it is. psycopg drops its prepared statements on every rollback.
        if connection.connection.prepare_threshold is None:
            connection.connection.prepare_threshold = 1_000_000
        raw = _preparing_cursor_class()(connection.connection)
    wrapper = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with wrapper as cursor:
        yield cursor


def bound_request_statements() -> None:
    """Every later PostgreSQL connection of this process cancels a statement after
    settings.DATABASE_STATEMENT_TIMEOUT ms and a lock wait after DATABASE_LOCK_TIMEOUT ms. Called
    by the web entry points only (config/wsgi.py, config/asgi.py): workers, beat and management
    commands (a migration building an index on 10M rows) keep no bound. Set at connect time
    (libpq ``options``), so it costs no round trip per request; PgBouncer needs
    ``ignore_startup_parameters = options``."""
    options = f"-c statement_timeout={settings.DATABASE_STATEMENT_TIMEOUT} -c lock_timeout={settings.DATABASE_LOCK_TIMEOUT}"
    for alias in connections:
        if connections[alias].vendor == "postgresql":
            connections[alias].close()
            connections[alias].settings_dict.setdefault("OPTIONS", {})["options"] = options
