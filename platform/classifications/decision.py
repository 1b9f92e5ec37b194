"""The submit decision: what one submission does, the same for a single submit and for each
item of a batch. Reads and writes only through the Tallies it is given (tally_store.py), which
answer each question the cheapest way for their path; raises a DomainError before this
submission writes anything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from classifier.retirement import RetirementRule
from classifier.tree import AnnotationError, DecisionTree
from galaxies.models import Galaxy
from workflows.models import Workflow

from .errors import (
    IdempotencyConflict,
    InvalidAnnotations,
    SubjectRetired,
    UnknownGalaxy,
    UnknownWorkflow,
    WorkflowInactive,
)
from .models import Classification, SubjectStatus, uniform_random
from .tally_store import Tallies
from .volunteers import Volunteer

USER_AGENT_MAX = Classification._meta.get_field("user_agent").max_length


@dataclass(frozen=True)
class Submission:
    """One classification as the volunteer's client sent it (alone or in a batch)."""

    workflow_slug: str
    galaxy_id_str: str
    annotations: Any
    idempotency_key: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    selection: str = Classification.Selection.DIRECT


@dataclass(frozen=True)
class SubmissionResult:
    classification: Classification
    created: bool
    status: SubjectStatus | None


def require_workflow(workflow: Workflow | None, *, slug: str) -> Workflow:
    if workflow is None:
        raise UnknownWorkflow(f"no workflow '{slug}'", field="workflow")
    return workflow


def decide(submission: Submission, *, workflow: Workflow, volunteer: Volunteer, tallies: Tallies, now: datetime,
           user_agent: str = "", is_simulated: bool = False) -> SubmissionResult:
    """The checks in their order — a known key replays before anything else is looked at; the
    workflow must be active, the annotations a path through its tree, the galaxy known and
    unretired — then the rule: a classification counts unless its volunteer already has a
    counted one of this galaxy in this workflow; a counted one adds its votes and may retire
    the galaxy."""
    key, galaxy_id_str = submission.idempotency_key, submission.galaxy_id_str
    existing = tallies.stored(key)
    if existing is not None:
        return _replay(existing=existing, workflow=workflow, submission=submission, volunteer=volunteer)
    if not workflow.is_active:
        raise WorkflowInactive(f"workflow '{workflow.slug}' is not active", field="workflow")
    path = _path_through_tree(tree=workflow.decision_tree, annotations=submission.annotations)
    status = tallies.status(workflow_id=workflow.id, galaxy_id_str=galaxy_id_str)
    if status is None:
        raise UnknownGalaxy(f"no galaxy with id_str '{galaxy_id_str}'", field="galaxy")
    if status.is_retired:
        raise SubjectRetired(f"galaxy '{galaxy_id_str}' is retired from '{workflow.slug}'", field="galaxy")

    classification = Classification(
        workflow=workflow, workflow_version=workflow.version,
        galaxy=Galaxy.from_db(connection.alias, ["id", "id_str"], [status.galaxy_id, galaxy_id_str]),
        user_id=volunteer.user_id, volunteer_key=volunteer.key,
        annotations=[{"question": q, "answer": a} for q, a in path], idempotency_key=key,
        selection=submission.selection, is_simulated=is_simulated, started_at=submission.started_at,
        finished_at=submission.finished_at or now, created_at=now, user_agent=user_agent[:USER_AGENT_MAX])
    tallies.add(classification)
    if classification.counted:
        _add_votes(status=status, workflow=workflow, path=path, now=now)
        tallies.tally_changed(status)
    return SubmissionResult(classification=classification, created=True, status=status)


def _replay(*, existing: Classification, workflow: Workflow, submission: Submission,
            volunteer: Volunteer) -> SubmissionResult:
    """The same key and the same classification (workflow, galaxy, volunteer, answers) replay
    the stored one; the same key for anything else is a client bug, refused (docs/api.md)."""
    if (existing.workflow_id != workflow.id or existing.galaxy.id_str != submission.galaxy_id_str
            or existing.volunteer_key != volunteer.key
            or _as_path(existing.annotations) != _as_path(submission.annotations)):
        raise IdempotencyConflict("this idempotency key was already used for a different classification",
                                  field="idempotency_key")
    return SubmissionResult(classification=existing, created=False, status=None)


def _as_path(annotations: Any) -> list[tuple[Any, Any]] | None:
    """The (question, answer) pairs of submitted or stored annotations; None when malformed."""
    if not isinstance(annotations, list) or not all(isinstance(a, dict) for a in annotations):
        return None
    return [(a.get("question"), a.get("answer")) for a in annotations]


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


def _add_votes(*, status: SubjectStatus, workflow: Workflow, path: list[tuple[str, str]], now: datetime) -> None:
    counts = status.vote_counts
    for column in workflow.decision_tree.path_columns(path):
        counts[column] = counts.get(column, 0) + 1
    status.classification_count += 1
    # A fresh key keeps the random share uniform over time (a draw favours keys after wide gaps).
    status.draw_key = uniform_random()
    status.updated_at = now
    apply_retirement_rule(status=status, workflow=workflow, now=now)


def apply_retirement_rule(*, status: SubjectStatus, workflow: Workflow, now: datetime) -> None:
    """Retire or un-retire the galaxy by its current votes: retired once `retirement_count`
    votes are in, or (early retirement) once they are decisive; otherwise open. A galaxy an
    admin retired stays retired. Run after each counted vote and after a shadow ban's recount,
    so a galaxy retired by a banned volunteer's votes returns to the queue unless the votes
    left still retire it."""
    if status.is_retired and status.retirement_reason == SubjectStatus.RetirementReason.ADMIN:
        return
    if status.classification_count >= workflow.retirement_count:
        reason = SubjectStatus.RetirementReason.CLASSIFICATION_COUNT
    elif workflow.early_retirement and _votes_decisive(status=status, workflow=workflow):
        reason = SubjectStatus.RetirementReason.CONSENSUS
    else:
        status.retired_at, status.retirement_reason = None, ""
        return
    if not status.is_retired or status.retirement_reason != reason:
        status.retired_at = now
    status.retirement_reason = reason


# The workflow's promise -> which questions may hold a galaxy in the rule (each with its own
# tuned thresholds: TUNED_THRESHOLDS / TUNED_PATH_THRESHOLDS).
_BLOCKING = {Workflow.RetirementAgreement.EVERY_QUESTION: "every",
             Workflow.RetirementAgreement.MAJORITY_PATH: "majority-path"}


def _votes_decisive(*, status: SubjectStatus, workflow: Workflow) -> bool:
    """No question that the remaining volunteers will still answer can change its majority —
    every question, or only those on the galaxy's majority path, as the workflow's
    ``retirement_agreement`` promises (the rule and its benchmark: docs/retirement.md). The rule
    is shared per (tree version, retirement count, promise), so a check pays no set-up, and
    ``decides`` skips the explanation and any arithmetic before ``min_votes`` (costs measured by
    tests/benchmarks/retirement_check_benchmark.py and, inside the submit, by api_benchmark.py
    --early-retirement both)."""
    rule = RetirementRule.cached(workflow.decision_tree, max_votes=workflow.retirement_count,
                                 blocking=_BLOCKING[workflow.retirement_agreement])
    return rule.decides(status.vote_counts, classifications=status.classification_count)
