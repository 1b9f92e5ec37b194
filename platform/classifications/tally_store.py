"""Every statement of the submit path: lock one or many status rows, probe idempotency keys and
what a volunteer already counted, insert classifications, update tallies. Decides nothing: the
submit decision (decision.py) asks, this module answers each question the cheapest way for a
single submit (3 round trips) or a batch (5, whatever its size).

Plain SQL that PostgreSQL and SQLite both accept: compiling the equivalent querysets cost
several times the CPU of running them. SQLite needs no row lock (its transactions take the
write lock up front, transaction_mode IMMEDIATE).
"""

from __future__ import annotations

import json
import random

from django.db import connection

from core.db import hot_path_cursor
from galaxies.models import Galaxy
from workflows.models import Workflow
from workflows.selectors import SETTINGS_COLUMNS, last_known_id, workflow_from_row

from .models import Classification, ShadowBan, SubjectStatus

_STATUS_TABLE, _CLASSIFICATION_TABLE, _GALAXY_TABLE = (SubjectStatus._meta.db_table, Classification._meta.db_table,
                                                       Galaxy._meta.db_table)
_BAN_TABLE, _WORKFLOW_TABLE = ShadowBan._meta.db_table, Workflow._meta.db_table
_STATUS_COLUMNS = "s.id, s.galaxy_id, s.vote_counts, s.classification_count, s.retired_at, s.retirement_reason"
_LOCK_ONE_SQL = f"""
    SELECT {_STATUS_COLUMNS}, EXISTS (SELECT 1 FROM {_CLASSIFICATION_TABLE} k WHERE k.idempotency_key = %s)
    FROM {_STATUS_TABLE} s JOIN {_GALAXY_TABLE} g ON g.id = s.galaxy_id
    WHERE s.workflow_id = %s AND g.id_str = %s"""
# The same, with the workflow's settings row read in the same round trip: by the id this process
# last saw for the slug, checked against the slug (a workflow recreated under the slug gets no row).
_LOCK_ONE_WITH_WORKFLOW_SQL = f"""
    SELECT {SETTINGS_COLUMNS}, {_STATUS_COLUMNS},
        EXISTS (SELECT 1 FROM {_CLASSIFICATION_TABLE} k WHERE k.idempotency_key = %s)
    FROM {_STATUS_TABLE} s JOIN {_GALAXY_TABLE} g ON g.id = s.galaxy_id JOIN {_WORKFLOW_TABLE} w ON w.id = s.workflow_id
    WHERE s.workflow_id = %s AND w.slug = %s AND g.id_str = %s"""
_SETTINGS_WIDTH = SETTINGS_COLUMNS.count(",") + 1
# `counted` is answered by this statement, which starts after the row lock was granted, so it sees
# what the previous lock holder committed (a probe inside the locking SELECT would not). A
# shadow-banned volunteer's vote is `shadowed` instead where it would have counted; the ban probe
# rides in the same round trip (a unique-index lookup in a small table).
_BANNED = f"EXISTS (SELECT 1 FROM {_BAN_TABLE} b WHERE b.volunteer_key = %s)"
_INSERT_SQL = f"""
    INSERT INTO {_CLASSIFICATION_TABLE} (workflow_id, workflow_version, galaxy_id, user_id, volunteer_key, annotations,
        idempotency_key, counted, shadowed, selection, is_simulated, is_favourite, started_at, finished_at,
        created_at, user_agent)
    VALUES (%s, %s, %s, %s, %s, %s, %s,
            NOT {_BANNED} AND NOT EXISTS (SELECT 1 FROM {_CLASSIFICATION_TABLE} c
                WHERE c.workflow_id = %s AND c.galaxy_id = %s AND c.volunteer_key = %s AND c.counted),
            {_BANNED} AND NOT EXISTS (SELECT 1 FROM {_CLASSIFICATION_TABLE} c
                WHERE c.workflow_id = %s AND c.galaxy_id = %s AND c.volunteer_key = %s AND (c.counted OR c.shadowed)),
            %s, %s, %s, %s, %s, %s, %s)
    RETURNING id, counted, shadowed"""
_UPDATE_TALLY_SQL = f"""
    UPDATE {_STATUS_TABLE} SET vote_counts = %s, classification_count = %s, draw_key = %s, retired_at = %s,
        retirement_reason = %s, updated_at = %s
    WHERE id = %s"""
_CREATE_BATCH = 5000


def create_statuses(*, workflow_id: int, galaxy_ids: list[int]) -> None:
    """Status rows for these galaxies (a row that exists already is left alone), each with its
    own random queue keys."""
    for start in range(0, len(galaxy_ids), _CREATE_BATCH):
        SubjectStatus.objects.bulk_create(
            [SubjectStatus(workflow_id=workflow_id, galaxy_id=galaxy_id, priority=random.random(),
                           random_key=random.random(), draw_key=random.random())
             for galaxy_id in galaxy_ids[start:start + _CREATE_BATCH]], ignore_conflicts=True)


def classification_by_key(key: str) -> Classification | None:
    return Classification.objects.select_related("galaxy", "workflow").filter(idempotency_key=key).first()


class Tallies:
    """The status rows one submit transaction holds locked, the answers probed so far and what
    it will write. Opened by lock_one (a single submit) or lock_many (a batch)."""

    def __init__(self, *, statuses: dict[tuple[int, str], SubjectStatus], stored_keys: set[str] | None,
                 counted_pairs: set[tuple[int, int]] | None, banned: bool = False):
        self._statuses = statuses
        self._stored_keys = stored_keys  # None: not probed, look each key up
        self._counted_pairs = counted_pairs  # None: the insert itself answers (one round trip less)
        self._banned = banned  # probed with the counted pairs; the single insert probes it itself
        self._new_by_key: dict[str, Classification] = {}
        self._pending: list[Classification] = []
        self._touched: dict[int, SubjectStatus] = {}

    def stored(self, key: str) -> Classification | None:
        """The classification stored under this key, earlier in this transaction or before."""
        if key in self._new_by_key:
            return self._new_by_key[key]
        if self._stored_keys is not None and key not in self._stored_keys:
            return None
        return classification_by_key(key)

    def status(self, *, workflow_id: int, galaxy_id_str: str) -> SubjectStatus | None:
        """The galaxy's status row, locked until commit (every submit for one galaxy and workflow
        passes through this lock, so counting and retirement see each other's effects); a missing
        row is created and locked. None when there is no such galaxy."""
        status = self._statuses.get((workflow_id, galaxy_id_str))
        if status is not None:
            return status
        galaxy_id = Galaxy.objects.filter(id_str=galaxy_id_str).values_list("id", flat=True).first()
        if galaxy_id is None:
            return None
        create_statuses(workflow_id=workflow_id, galaxy_ids=[galaxy_id])
        self._statuses.update(_lock_rows(workflow_ids=[workflow_id], galaxy_id_strs=[galaxy_id_str]))
        return self._statuses[(workflow_id, galaxy_id_str)]

    def add(self, classification: Classification) -> None:
        """Add the classification to what this transaction writes and settle whether it counts:
        it does unless its volunteer already has a counted (or shadowed) classification of the
        galaxy in the workflow, earlier in this transaction or before; a shadow-banned
        volunteer's would-be counted vote is ``shadowed`` instead. A single submit inserts it
        now, the statement answering in the same round trip; a batch answers from its
        counted-pairs probe and inserts at write()."""
        self._new_by_key[classification.idempotency_key] = classification
        if self._counted_pairs is None:
            classification.id, classification.counted, classification.shadowed = _insert(classification)
            classification._state.adding = False
            return
        pair = (classification.workflow_id, classification.galaxy_id)
        first = pair not in self._counted_pairs
        classification.counted, classification.shadowed = first and not self._banned, first and self._banned
        self._counted_pairs.add(pair)
        self._pending.append(classification)

    def tally_changed(self, status: SubjectStatus) -> None:
        self._touched[status.id] = status

    def write(self) -> list[Classification]:
        """Insert what is pending and update every changed tally; returns every new classification."""
        if self._pending:
            Classification.objects.bulk_create(self._pending)
            self._pending = []
        if self._touched:
            params = [_tally_params(status) for status in self._touched.values()]
            with hot_path_cursor() as cursor:
                if len(params) == 1:
                    cursor.execute(_UPDATE_TALLY_SQL, params[0])
                else:
                    cursor.executemany(_UPDATE_TALLY_SQL, params)
            self._touched = {}
        return list(self._new_by_key.values())


def lock_one(*, workflow_id: int, galaxy_id_str: str, idempotency_key: str) -> Tallies:
    """One round trip: the galaxy's status row locked and whether the key is stored already."""
    with hot_path_cursor() as cursor:
        cursor.execute(_LOCK_ONE_SQL + _for_update_of_status(), [idempotency_key, workflow_id, galaxy_id_str])
        row = cursor.fetchone()
    if row is None:
        return Tallies(statuses={}, stored_keys=None, counted_pairs=None)
    *status_row, key_exists = row
    return Tallies(statuses={(workflow_id, galaxy_id_str): _status_from_row(workflow_id=workflow_id, row=status_row)},
                   stored_keys={idempotency_key} if key_exists else set(), counted_pairs=None)


def lock_one_with_workflow(*, workflow_slug: str, galaxy_id_str: str,
                           idempotency_key: str) -> tuple[Workflow, Tallies] | None:
    """lock_one and the workflow's settings (workflows.selectors.workflow_settings) in one round
    trip, one less than reading the workflow first. None when that cannot answer — this process
    has not read the workflow yet, or there is no such workflow, galaxy or status row — and the
    caller takes the two-step path, which tells those apart."""
    workflow_id = last_known_id(slug=workflow_slug)
    if workflow_id is None:
        return None
    with hot_path_cursor() as cursor:
        cursor.execute(_LOCK_ONE_WITH_WORKFLOW_SQL + _for_update_of_status(),
                       [idempotency_key, workflow_id, workflow_slug, galaxy_id_str])
        row = cursor.fetchone()
    if row is None:
        return None
    workflow = workflow_from_row(slug=workflow_slug, row=tuple(row[:_SETTINGS_WIDTH]))
    *status_row, key_exists = row[_SETTINGS_WIDTH:]
    return workflow, Tallies(
        statuses={(workflow_id, galaxy_id_str): _status_from_row(workflow_id=workflow_id, row=status_row)},
        stored_keys={idempotency_key} if key_exists else set(), counted_pairs=None)


def lock_many(*, workflow_ids: list[int], galaxy_id_strs: list[str], idempotency_keys: list[str],
              volunteer_key: str) -> Tallies:
    """Three round trips for any batch: lock the status rows, probe the keys, then (after the
    locks were granted, so it sees what earlier lock holders committed) the pairs this volunteer
    already counted."""
    statuses = _lock_rows(workflow_ids=workflow_ids, galaxy_id_strs=galaxy_id_strs) if workflow_ids else {}
    stored_keys = _stored_keys(idempotency_keys)
    counted, banned = _counted_pairs(volunteer_key=volunteer_key, workflow_ids=sorted({wid for wid, _ in statuses}),
                                     galaxy_ids=sorted({s.galaxy_id for s in statuses.values()})) if statuses else (
        set(), False)
    return Tallies(statuses=statuses, stored_keys=stored_keys, counted_pairs=counted, banned=banned)


def _for_update_of_status() -> str:
    return " FOR UPDATE OF s" if connection.features.has_select_for_update_of else ""


def _in(values: list) -> tuple[str, list]:
    """A membership test: one array parameter on PostgreSQL (one prepared statement whatever
    the batch size), an IN list elsewhere."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [values]
    return f"IN ({', '.join(['%s'] * len(values))})", values


def _lock_rows(*, workflow_ids: list[int], galaxy_id_strs: list[str]) -> dict[tuple[int, str], SubjectStatus]:
    """The status rows locked in one statement in (workflow, galaxy) order, so concurrent batches
    cannot deadlock; keyed by (workflow id, galaxy id_str). A batch over several workflows also
    locks the other pairings of its workflows and galaxies: harmless, same order."""
    workflows_in, workflow_params = _in(workflow_ids)
    galaxies_in, galaxy_params = _in(galaxy_id_strs)
    sql = (f"SELECT s.workflow_id, g.id_str, {_STATUS_COLUMNS} FROM {_STATUS_TABLE} s "
           f"JOIN {_GALAXY_TABLE} g ON g.id = s.galaxy_id "
           f"WHERE s.workflow_id {workflows_in} AND g.id_str {galaxies_in} ORDER BY s.workflow_id, g.id_str"
           + _for_update_of_status())
    with hot_path_cursor() as cursor:
        cursor.execute(sql, [*workflow_params, *galaxy_params])
        rows = cursor.fetchall()
    return {(workflow_id, id_str): _status_from_row(workflow_id=workflow_id, row=rest)
            for workflow_id, id_str, *rest in rows}


def _stored_keys(keys: list[str]) -> set[str]:
    keys_in, params = _in(keys)
    with hot_path_cursor() as cursor:
        cursor.execute(f"SELECT idempotency_key FROM {_CLASSIFICATION_TABLE} WHERE idempotency_key {keys_in}", params)
        return {key for (key,) in cursor.fetchall()}


def _counted_pairs(*, volunteer_key: str, workflow_ids: list[int], galaxy_ids: list[int]
                   ) -> tuple[set[tuple[int, int]], bool]:
    """(workflow id, galaxy id) pairs this volunteer already has a counted or shadowed
    classification of, and whether the volunteer is shadow-banned (a row of NULLs), in one round
    trip. All three columns of the seen-by index are constrained: a veteran's history is not scanned."""
    workflows_in, workflow_params = _in(workflow_ids)
    galaxies_in, galaxy_params = _in(galaxy_ids)
    with hot_path_cursor() as cursor:
        cursor.execute(f"SELECT workflow_id, galaxy_id FROM {_CLASSIFICATION_TABLE} WHERE volunteer_key = %s "
                       f"AND workflow_id {workflows_in} AND galaxy_id {galaxies_in} AND (counted OR shadowed) "
                       f"UNION ALL SELECT NULL, NULL WHERE {_BANNED}",
                       [volunteer_key, *workflow_params, *galaxy_params, volunteer_key])
        rows = set(cursor.fetchall())
    banned = (None, None) in rows
    return rows - {(None, None)}, banned


def _status_from_row(*, workflow_id: int, row) -> SubjectStatus:
    status_id, galaxy_id, vote_counts, count, retired_at, reason = row
    return SubjectStatus.from_db(connection.alias, [
        "id", "workflow_id", "galaxy_id", "vote_counts", "classification_count", "retired_at", "retirement_reason"], [
        status_id, workflow_id, galaxy_id, json.loads(vote_counts) if isinstance(vote_counts, str) else vote_counts,
        count, retired_at, reason])


def _insert(c: Classification) -> tuple[int, bool, bool]:
    adapt = connection.ops.adapt_datetimefield_value
    with hot_path_cursor() as cursor:
        cursor.execute(_INSERT_SQL, [
            c.workflow_id, c.workflow_version, c.galaxy_id, c.user_id, c.volunteer_key, json.dumps(c.annotations),
            c.idempotency_key, c.volunteer_key, c.workflow_id, c.galaxy_id, c.volunteer_key,
            c.volunteer_key, c.workflow_id, c.galaxy_id, c.volunteer_key, c.selection, c.is_simulated,
            c.is_favourite, adapt(c.started_at), adapt(c.finished_at), adapt(c.created_at), c.user_agent])
        classification_id, counted, shadowed = cursor.fetchone()
    return classification_id, bool(counted), bool(shadowed)


def _tally_params(status: SubjectStatus) -> list:
    adapt = connection.ops.adapt_datetimefield_value
    return [json.dumps(status.vote_counts), status.classification_count, status.draw_key, adapt(status.retired_at),
            status.retirement_reason, adapt(status.updated_at), status.id]
