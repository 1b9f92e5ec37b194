"""Writes: submitting classifications (validated against the workflow's tree, idempotent,
counts kept exact under concurrency) and keeping one status row per galaxy and workflow."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from classifier.retirement import RetirementRule
from classifier.tree import AnnotationError, DecisionTree
from core.db import hot_path_cursor
from core.errors import DomainError
from galaxies.models import Galaxy
from workflows.models import Workflow
from workflows.selectors import workflow_settings

from .errors import (
    IdempotencyConflict,
    InvalidAnnotations,
    SubjectRetired,
    UnknownGalaxy,
    UnknownWorkflow,
    WorkflowInactive,
)
from .models import Classification, SubjectStatus, uniform_random
from .signals import classification_counted


@dataclass(frozen=True)
class Volunteer:
    """Who classifies: a signed-in user or an anonymous browser session."""

    key: str
    user_id: int | None = None

    @classmethod
    def for_user(cls, user_id: int) -> Volunteer:
        return cls(key=f"user:{user_id}", user_id=user_id)

    @classmethod
    def anonymous(cls, session_id: str) -> Volunteer:
        return cls(key=f"anon:{session_id}")


@dataclass(frozen=True)
class SubmissionResult:
    classification: Classification
    created: bool
    status: SubjectStatus | None


def ensure_subject_statuses(*, workflow: Workflow | None = None, galaxy_ids: list[int] | None = None) -> int:
    """Create the missing status rows (workflow × galaxy); returns how many were missing."""
    workflows = [workflow] if workflow else list(Workflow.objects.all())
    created = 0
    for wf in workflows:
        galaxies = Galaxy.objects.all() if galaxy_ids is None else Galaxy.objects.filter(id__in=galaxy_ids)
        has_status = SubjectStatus.objects.filter(workflow=wf, galaxy_id=OuterRef("pk"))
        missing = list(galaxies.filter(~Exists(has_status)).values_list("id", flat=True).iterator())
        for start in range(0, len(missing), 5000):
            rows = [SubjectStatus(workflow=wf, galaxy_id=gid, priority=random.random(),
                                  random_key=random.random(), draw_key=random.random())
                    for gid in missing[start:start + 5000]]
            SubjectStatus.objects.bulk_create(rows, ignore_conflicts=True)
        created += len(missing)
    return created


def _by_idempotency_key(key: str) -> Classification | None:
    return Classification.objects.select_related("galaxy", "workflow").filter(idempotency_key=key).first()


def _replay(*, existing: Classification, workflow: Workflow, galaxy_id_str: str,
            volunteer: Volunteer) -> SubmissionResult:
    if (existing.workflow_id != workflow.id or existing.galaxy.id_str != galaxy_id_str
            or existing.volunteer_key != volunteer.key):
        raise IdempotencyConflict("this idempotency key was already used for a different classification",
                                  field="idempotency_key")
    return SubmissionResult(classification=existing, created=False, status=None)


def _require_workflow(workflow: Workflow | None, *, slug: str) -> Workflow:
    if workflow is None:
        raise UnknownWorkflow(f"no workflow '{slug}'", field="workflow")
    return workflow


def _require_active(workflow: Workflow) -> None:
    if not workflow.is_active:
        raise WorkflowInactive(f"workflow '{workflow.slug}' is not active", field="workflow")


def _require_unretired(status: SubjectStatus, *, workflow: Workflow, galaxy_id_str: str) -> None:
    if status.is_retired:
        raise SubjectRetired(f"galaxy '{galaxy_id_str}' is retired from '{workflow.slug}'", field="galaxy")


def _retire_if_due(*, status: SubjectStatus, workflow: Workflow, now: datetime) -> None:
    if status.classification_count >= workflow.retirement_count:
        status.retired_at = now
        status.retirement_reason = SubjectStatus.RetirementReason.CLASSIFICATION_COUNT
    elif workflow.early_retirement and _votes_decisive(status=status, workflow=workflow):
        status.retired_at = now
        status.retirement_reason = SubjectStatus.RetirementReason.CONSENSUS


def _votes_decisive(*, status: SubjectStatus, workflow: Workflow) -> bool:
    """No question that the remaining volunteers will still answer can change its majority
    (the rule and its benchmark: docs/retirement.md)."""
    rule = RetirementRule(workflow.decision_tree, max_votes=workflow.retirement_count)
    return rule.is_decisive(status.vote_counts, classifications=status.classification_count).decisive


def _path_through_tree(*, tree: DecisionTree, annotations: Any) -> list[tuple[str, str]]:
    """The submitted answers as a path, or InvalidAnnotations naming the rule broken. The tree
    also accepts (question, answer) pairs from Python callers; submissions must be a JSON list
    of {question, answer} objects, so their shape is checked here first."""
    try:
        if not isinstance(annotations, list):
            raise AnnotationError("annotations must be a list of {question, answer} objects", rule="not_a_list")
        for index, item in enumerate(annotations):
            if not isinstance(item, dict):
                raise AnnotationError(f"annotation #{index} must be an object with 'question' and 'answer'",
                                      rule="malformed", index=index)
        return tree.validate_annotations(annotations)
    except AnnotationError as exc:
        raise InvalidAnnotations(exc.message, field="annotations", detail={"error": exc.as_dict()}) from exc


_STATUS_TABLE, _CLASSIFICATION_TABLE, _GALAXY_TABLE = (SubjectStatus._meta.db_table, Classification._meta.db_table,
                                                       Galaxy._meta.db_table)
# The submit path in plain SQL that PostgreSQL and SQLite both accept: compiling the equivalent
# querysets cost several times the CPU of running them. SQLite needs no row lock (its
# transactions take the write lock up front, transaction_mode IMMEDIATE).
_LOCK_STATUS_SQL = f"""
    SELECT s.id, s.galaxy_id, s.vote_counts, s.classification_count, s.retired_at, s.retirement_reason,
           EXISTS (SELECT 1 FROM {_CLASSIFICATION_TABLE} k WHERE k.idempotency_key = %s)
    FROM {_STATUS_TABLE} s JOIN {_GALAXY_TABLE} g ON g.id = s.galaxy_id
    WHERE s.workflow_id = %s AND g.id_str = %s"""
# `counted` is decided by this statement, which starts after the row lock was granted, so it sees
# what the previous lock holder committed (a probe inside the locking SELECT would not).
_INSERT_SQL = f"""
    INSERT INTO {_CLASSIFICATION_TABLE} (workflow_id, workflow_version, galaxy_id, user_id, volunteer_key, annotations,
        idempotency_key, counted, selection, is_simulated, is_favourite, started_at, finished_at, created_at,
        user_agent)
    VALUES (%s, %s, %s, %s, %s, %s, %s,
            NOT EXISTS (SELECT 1 FROM {_CLASSIFICATION_TABLE} c
                        WHERE c.workflow_id = %s AND c.galaxy_id = %s AND c.volunteer_key = %s AND c.counted),
            %s, %s, %s, %s, %s, %s, %s)
    RETURNING id, counted"""
_UPDATE_TALLY_SQL = f"""
    UPDATE {_STATUS_TABLE} SET vote_counts = %s, classification_count = %s, draw_key = %s, retired_at = %s,
        retirement_reason = %s, updated_at = %s
    WHERE id = %s"""


@dataclass(frozen=True)
class _LockedStatus:
    status: SubjectStatus
    key_exists: bool


def _lock_status(*, workflow: Workflow, galaxy_id_str: str, idempotency_key: str) -> _LockedStatus | None:
    """The galaxy's status row, locked until commit (every submit for one galaxy and workflow
    passes through this lock, so counting and retirement see each other's effects), and whether
    the idempotency key is already stored; None when the galaxy or its status row is missing."""
    sql = _LOCK_STATUS_SQL + _for_update_of_status()
    with hot_path_cursor() as cursor:
        cursor.execute(sql, [idempotency_key, workflow.id, galaxy_id_str])
        row = cursor.fetchone()
    if row is None:
        return None
    *status_row, key_exists = row
    return _LockedStatus(status=_status_from_row(workflow_id=workflow.id, row=status_row), key_exists=bool(key_exists))


def _for_update_of_status() -> str:
    return " FOR UPDATE OF s" if connection.features.has_select_for_update_of else ""


def _status_from_row(*, workflow_id: int, row) -> SubjectStatus:
    status_id, galaxy_id, vote_counts, count, retired_at, reason = row
    return SubjectStatus.from_db(connection.alias, [
        "id", "workflow_id", "galaxy_id", "vote_counts", "classification_count", "retired_at", "retirement_reason"], [
        status_id, workflow_id, galaxy_id, json.loads(vote_counts) if isinstance(vote_counts, str) else vote_counts,
        count, retired_at, reason])


def _lock_or_create_status(*, workflow: Workflow, galaxy_id_str: str, idempotency_key: str) -> SubjectStatus:
    galaxy_id = Galaxy.objects.filter(id_str=galaxy_id_str).values_list("id", flat=True).first()
    if galaxy_id is None:
        raise UnknownGalaxy(f"no galaxy with id_str '{galaxy_id_str}'", field="galaxy")
    ensure_subject_statuses(workflow=workflow, galaxy_ids=[galaxy_id])
    return _lock_status(workflow=workflow, galaxy_id_str=galaxy_id_str, idempotency_key=idempotency_key).status


def _add_votes(*, status: SubjectStatus, workflow: Workflow, path: list[tuple[str, str]], now: datetime) -> None:
    counts = status.vote_counts
    for column in workflow.decision_tree.path_columns(path):
        counts[column] = counts.get(column, 0) + 1
    status.classification_count += 1
    # A fresh key keeps the random share uniform over time (a draw favours keys after wide gaps).
    status.draw_key = uniform_random()
    _retire_if_due(status=status, workflow=workflow, now=now)
    status.updated_at = now


def _tally_params(status: SubjectStatus) -> list:
    adapt = connection.ops.adapt_datetimefield_value
    return [json.dumps(status.vote_counts), status.classification_count, status.draw_key, adapt(status.retired_at),
            status.retirement_reason, adapt(status.updated_at), status.id]


def submit_classification(*, workflow: Workflow, galaxy_id_str: str, volunteer: Volunteer,
                          annotations: Any, idempotency_key: str,
                          started_at: datetime | None = None, finished_at: datetime | None = None,
                          user_agent: str = "", selection: str = Classification.Selection.DIRECT,
                          is_simulated: bool = False) -> SubmissionResult:
    """Store one classification and add its votes to the galaxy's tally, atomically.

    A replay of the same idempotency key returns the stored classification and changes
    nothing. A volunteer's repeat classification of a galaxy is stored but not counted.
    """
    try:
        with transaction.atomic():
            return _store_classification(
                workflow=workflow, galaxy_id_str=galaxy_id_str, volunteer=volunteer, annotations=annotations,
                idempotency_key=idempotency_key, started_at=started_at, finished_at=finished_at,
                user_agent=user_agent, selection=selection, is_simulated=is_simulated)
    except IntegrityError:
        # A concurrent request with the same key committed first; ours rolled back whole,
        # which is cheaper than a savepoint around every insert.
        existing = _by_idempotency_key(idempotency_key)
        if existing is None:
            raise
        return _replay(existing=existing, workflow=workflow, galaxy_id_str=galaxy_id_str, volunteer=volunteer)


def _store_classification(*, workflow: Workflow, galaxy_id_str: str, volunteer: Volunteer, annotations: Any,
                          idempotency_key: str, started_at: datetime | None, finished_at: datetime | None,
                          user_agent: str, selection: str, is_simulated: bool = False) -> SubmissionResult:
    """Round trips: lock the status row (and probe the key), insert, update the tally; the caller
    commits. The checks keep their order: a known key replays before anything else is looked at,
    and every DomainError is raised before this classification writes anything."""
    locked = _lock_status(workflow=workflow, galaxy_id_str=galaxy_id_str, idempotency_key=idempotency_key)
    existing = _by_idempotency_key(idempotency_key) if locked is None or locked.key_exists else None
    if existing is not None:
        return _replay(existing=existing, workflow=workflow, galaxy_id_str=galaxy_id_str, volunteer=volunteer)
    _require_active(workflow)
    tree = workflow.decision_tree
    path = _path_through_tree(tree=tree, annotations=annotations)
    status = (locked.status if locked is not None else
              _lock_or_create_status(workflow=workflow, galaxy_id_str=galaxy_id_str, idempotency_key=idempotency_key))
    _require_unretired(status, workflow=workflow, galaxy_id_str=galaxy_id_str)

    now = timezone.now()
    finished_at = finished_at or now
    stored_annotations = [{"question": q, "answer": a} for q, a in path]
    adapt = connection.ops.adapt_datetimefield_value
    with hot_path_cursor() as cursor:
        cursor.execute(_INSERT_SQL, [
            workflow.id, workflow.version, status.galaxy_id, volunteer.user_id, volunteer.key,
            json.dumps(stored_annotations), idempotency_key, workflow.id, status.galaxy_id, volunteer.key,
            selection, is_simulated, False, adapt(started_at), adapt(finished_at), adapt(now), user_agent[:400]])
        classification_id, counted = cursor.fetchone()
        if counted:
            _add_votes(status=status, workflow=workflow, path=path, now=now)
            cursor.execute(_UPDATE_TALLY_SQL, _tally_params(status))
    if counted:
        classification_counted.send(sender=Classification, workflow_id=workflow.id,
                                    classification_id=classification_id)
    galaxy = Galaxy.from_db(connection.alias, ["id", "id_str"], [status.galaxy_id, galaxy_id_str])
    classification = Classification.from_db(connection.alias, [
        "id", "workflow_id", "workflow_version", "galaxy_id", "user_id", "volunteer_key", "annotations",
        "idempotency_key", "counted", "selection", "is_simulated", "is_favourite", "started_at", "finished_at",
        "created_at", "user_agent"], [
        classification_id, workflow.id, workflow.version, status.galaxy_id, volunteer.user_id, volunteer.key,
        stored_annotations, idempotency_key, bool(counted), selection, is_simulated, False, started_at, finished_at,
        now, user_agent[:400]])
    classification.workflow, classification.galaxy = workflow, galaxy
    return SubmissionResult(classification=classification, created=True, status=status)


@dataclass(frozen=True)
class Submission:
    """One classification of a batch, as the volunteer's client sent it."""

    workflow_slug: str
    galaxy_id_str: str
    annotations: Any
    idempotency_key: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    selection: str = Classification.Selection.DIRECT


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one submission of a batch: a result, or the error a single submit would raise."""

    result: SubmissionResult | None = None
    error: DomainError | None = None


def submit_classifications(*, submissions: list[Submission], volunteer: Volunteer,
                           user_agent: str = "") -> list[BatchOutcome]:
    """Store one volunteer's classifications in one transaction, each with exactly the outcome
    submit_classification would give it (a rejected one does not stop the others).

    One commit and one request for many votes: a client that queued votes (offline, or
    batching) pays one request's overhead instead of one each. Status rows are locked in
    (workflow, galaxy) order, so concurrent batches cannot deadlock. If another request stores
    one of these idempotency keys meanwhile, the batch is rolled back and every submission is
    settled on its own, as a single submit.
    """
    workflows = {slug: workflow_settings(slug=slug) for slug in {s.workflow_slug for s in submissions}}
    try:
        return _store_batch(submissions=submissions, workflows=workflows, volunteer=volunteer, user_agent=user_agent)
    except IntegrityError:
        return [_settle(submission, workflow=workflows[submission.workflow_slug], volunteer=volunteer,
                        user_agent=user_agent) for submission in submissions]


def _settle(submission: Submission, *, workflow: Workflow | None, volunteer: Volunteer,
            user_agent: str) -> BatchOutcome:
    try:
        return BatchOutcome(result=submit_classification(
            workflow=_require_workflow(workflow, slug=submission.workflow_slug),
            galaxy_id_str=submission.galaxy_id_str, volunteer=volunteer,
            annotations=submission.annotations, idempotency_key=submission.idempotency_key,
            started_at=submission.started_at, finished_at=submission.finished_at, user_agent=user_agent,
            selection=submission.selection))
    except DomainError as exc:
        return BatchOutcome(error=exc)


def _in(values: list) -> tuple[str, list]:
    """A membership test: one array parameter on PostgreSQL (one prepared statement whatever
    the batch size), an IN list elsewhere."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [values]
    return f"IN ({', '.join(['%s'] * len(values))})", values


def _lock_statuses(*, workflow_ids: list[int], galaxy_id_strs: list[str]) -> dict[tuple[int, str], SubjectStatus]:
    """Every status row a batch touches, locked in one statement in (workflow, galaxy) order, so
    concurrent batches cannot deadlock; keyed by (workflow id, galaxy id_str). A batch over several
    workflows also locks the other pairings of its workflows and galaxies: harmless, same order."""
    workflows_in, workflow_params = _in(workflow_ids)
    galaxies_in, galaxy_params = _in(galaxy_id_strs)
    sql = (f"SELECT s.workflow_id, g.id_str, s.id, s.galaxy_id, s.vote_counts, s.classification_count, "
           f"s.retired_at, s.retirement_reason FROM {_STATUS_TABLE} s JOIN {_GALAXY_TABLE} g ON g.id = s.galaxy_id "
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


def _counted_already(*, volunteer: Volunteer, workflow_ids: list[int], galaxy_ids: list[int]) -> set[tuple[int, int]]:
    """(workflow id, galaxy id) pairs this volunteer already has a counted classification of.
    Runs after the status locks were granted, so it sees what earlier lock holders committed.
    All three columns of the seen-by index are constrained: a veteran's history is not scanned."""
    workflows_in, workflow_params = _in(workflow_ids)
    galaxies_in, galaxy_params = _in(galaxy_ids)
    with hot_path_cursor() as cursor:
        cursor.execute(f"SELECT workflow_id, galaxy_id FROM {_CLASSIFICATION_TABLE} WHERE volunteer_key = %s "
                       f"AND workflow_id {workflows_in} AND galaxy_id {galaxies_in} AND counted",
                       [volunteer.key, *workflow_params, *galaxy_params])
        return set(cursor.fetchall())


@dataclass
class _BatchState:
    """What a batch has decided so far, before anything is written."""

    statuses: dict[tuple[int, str], SubjectStatus]
    stored_keys: set[str]
    counted: set[tuple[int, int]]
    new_by_key: dict[str, Classification]
    touched: dict[int, SubjectStatus]


@transaction.atomic
def _store_batch(*, submissions: list[Submission], workflows: dict[str, Workflow | None], volunteer: Volunteer,
                 user_agent: str) -> list[BatchOutcome]:
    """The batch as a few set-wise statements — probe the keys, lock the status rows, probe what
    this volunteer already counted, insert every new classification, update every touched
    tally — instead of three round trips per classification; each item is decided in lock order
    exactly as _store_classification decides a single submit."""
    known = [s for s in submissions if workflows[s.workflow_slug] is not None]
    statuses = _lock_statuses(workflow_ids=sorted({workflows[s.workflow_slug].id for s in known}),
                              galaxy_id_strs=sorted({s.galaxy_id_str for s in known})) if known else {}
    state = _BatchState(
        statuses=statuses, stored_keys=_stored_keys(sorted({s.idempotency_key for s in submissions})),
        counted=_counted_already(volunteer=volunteer, workflow_ids=sorted({wid for wid, _ in statuses}),
                                 galaxy_ids=sorted({st.galaxy_id for st in statuses.values()})) if statuses else set(),
        new_by_key={}, touched={})
    now = timezone.now()
    outcomes: list[BatchOutcome | None] = [None] * len(submissions)
    for index in sorted(range(len(submissions)),
                        key=lambda i: (submissions[i].workflow_slug, submissions[i].galaxy_id_str)):
        submission = submissions[index]
        try:
            result = _decide(submission, workflow=workflows[submission.workflow_slug], volunteer=volunteer,
                             user_agent=user_agent, state=state, now=now)
            outcomes[index] = BatchOutcome(result=result)
        except DomainError as exc:
            outcomes[index] = BatchOutcome(error=exc)
    new = list(state.new_by_key.values())
    Classification.objects.bulk_create(new)
    if state.touched:
        with hot_path_cursor() as cursor:
            cursor.executemany(_UPDATE_TALLY_SQL, [_tally_params(status) for status in state.touched.values()])
    for classification in new:
        if classification.counted:
            classification_counted.send(sender=Classification, workflow_id=classification.workflow_id,
                                        classification_id=classification.id)
    return outcomes


def _decide(submission: Submission, *, workflow: Workflow | None, volunteer: Volunteer, user_agent: str,
            state: _BatchState, now: datetime) -> SubmissionResult:
    """One item of a batch, in the order of checks of _store_classification; writes nothing
    itself but the batch state (a missing status row is created and locked here)."""
    workflow = _require_workflow(workflow, slug=submission.workflow_slug)
    key, galaxy_id_str = submission.idempotency_key, submission.galaxy_id_str
    existing = state.new_by_key.get(key) or (_by_idempotency_key(key) if key in state.stored_keys else None)
    if existing is not None:
        return _replay(existing=existing, workflow=workflow, galaxy_id_str=galaxy_id_str, volunteer=volunteer)
    _require_active(workflow)
    path = _path_through_tree(tree=workflow.decision_tree, annotations=submission.annotations)
    status = state.statuses.get((workflow.id, galaxy_id_str))
    if status is None:  # a galaxy no one has classified in this workflow yet: nothing of it is counted
        status = _lock_or_create_status(workflow=workflow, galaxy_id_str=galaxy_id_str, idempotency_key=key)
        state.statuses[(workflow.id, galaxy_id_str)] = status
    _require_unretired(status, workflow=workflow, galaxy_id_str=galaxy_id_str)

    counted = (workflow.id, status.galaxy_id) not in state.counted
    if counted:
        state.counted.add((workflow.id, status.galaxy_id))
        _add_votes(status=status, workflow=workflow, path=path, now=now)
        state.touched[status.id] = status
    classification = Classification(
        workflow=workflow, workflow_version=workflow.version,
        galaxy=Galaxy.from_db(connection.alias, ["id", "id_str"], [status.galaxy_id, galaxy_id_str]),
        user_id=volunteer.user_id, volunteer_key=volunteer.key,
        annotations=[{"question": q, "answer": a} for q, a in path], idempotency_key=key, counted=counted,
        selection=submission.selection, started_at=submission.started_at,
        finished_at=submission.finished_at or now, user_agent=user_agent[:400])
    state.new_by_key[key] = classification
    return SubmissionResult(classification=classification, created=True, status=status)


@transaction.atomic
def set_favourite(*, classification_id: int, volunteer: Volunteer, is_favourite: bool) -> Classification:
    classification = Classification.objects.select_for_update().get(id=classification_id,
                                                                     volunteer_key=volunteer.key)
    classification.is_favourite = is_favourite
    classification.save(update_fields=["is_favourite"])
    return classification


@transaction.atomic
def override_retirement(*, workflow_id: int, galaxy_id: int, retire: bool,
                        reason: str = SubjectStatus.RetirementReason.ADMIN) -> SubjectStatus:
    """Force-retire (with ``reason``, a RetirementReason value) or un-retire one galaxy, under the
    status row's lock. The caller records who and why; the retirement rule still applies to
    votes that arrive after an un-retire."""
    if retire and reason not in SubjectStatus.RetirementReason.values:
        raise DomainError(f"unknown retirement reason {reason!r}", field="reason")
    status, _ = SubjectStatus.objects.select_for_update().get_or_create(workflow_id=workflow_id, galaxy_id=galaxy_id)
    status.retired_at = (status.retired_at or timezone.now()) if retire else None
    status.retirement_reason = reason if retire else ""
    status.save(update_fields=["retired_at", "retirement_reason", "updated_at"])
    return status
