"""Writes: submitting classifications (one at a time or in batches, both through the one
decision in decision.py and the statements in tally_store.py), keeping one status row per
galaxy and workflow, and setting the queue's priorities."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, FloatField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from classifier.tree import DecisionTree
from core.errors import DomainError
from galaxies.models import Galaxy
from workflows.models import Workflow, WorkflowVersion
from workflows.selectors import workflow_settings

from . import tally_store
from .decision import Submission, SubmissionResult, apply_retirement_rule, decide, require_workflow
from .errors import UnknownShadowBan
from .models import Classification, ShadowBan, SubjectStatus
from .signals import classification_counted
from .volunteers import Volunteer

__all__ = ["BatchOutcome", "Submission", "SubmissionResult", "ensure_subject_statuses", "set_favourite",
           "lift_shadow_ban", "set_queue_priorities", "shadow_ban", "submit_classification", "submit_classifications"]


@dataclass(frozen=True)
class BatchOutcome:
    """What became of one submission of a batch: a result, or the error a single submit would raise."""

    result: SubmissionResult | None = None
    error: DomainError | None = None


def ensure_subject_statuses(*, workflow: Workflow | None = None, galaxy_ids: list[int] | None = None) -> int:
    """Create the missing status rows (workflow × galaxy); returns how many were missing."""
    workflows = [workflow] if workflow else list(Workflow.objects.all())
    created = 0
    for wf in workflows:
        galaxies = Galaxy.objects.all() if galaxy_ids is None else Galaxy.objects.filter(id__in=galaxy_ids)
        has_status = SubjectStatus.objects.filter(workflow=wf, galaxy_id=OuterRef("pk"))
        missing = list(galaxies.filter(~Exists(has_status)).values_list("id", flat=True).iterator())
        tally_store.create_statuses(workflow_id=wf.id, galaxy_ids=missing)
        created += len(missing)
    return created


@transaction.atomic
def set_queue_priorities(*, workflow_id: int, scores: QuerySet, score_field: str, default: float) -> int:
    """Every status row of the workflow gets its galaxy's score from `scores` (a queryset with
    `galaxy_id` and `score_field`; the first row per galaxy), or `default` for a galaxy without
    one, in one UPDATE; returns how many rows were set."""
    score = scores.filter(galaxy_id=OuterRef("galaxy_id")).values(score_field)[:1]
    return SubjectStatus.objects.filter(workflow_id=workflow_id).update(
        priority=Coalesce(Subquery(score, output_field=FloatField()), Value(default)))


def submit_classification(*, submission: Submission, volunteer: Volunteer, user_agent: str = "",
                          is_simulated: bool = False) -> SubmissionResult:
    """Store one classification and add its votes to the galaxy's tally, atomically, in three
    round trips: read the workflow, lock the status row and probe the key (one statement once
    this process knows the workflow), insert, update the tally.

    A replay of the same idempotency key returns the stored classification and changes
    nothing. A volunteer's repeat classification of a galaxy is stored but not counted.
    """
    try:
        return _submit_one(submission, volunteer=volunteer, user_agent=user_agent, is_simulated=is_simulated)
    except IntegrityError:
        # A concurrent request with the same key committed first; ours rolled back whole, which
        # is cheaper than a savepoint around every insert. Submitted again, the key replays.
        return _submit_one(submission, volunteer=volunteer, user_agent=user_agent, is_simulated=is_simulated)


@transaction.atomic
def _submit_one(submission: Submission, *, volunteer: Volunteer, user_agent: str,
                is_simulated: bool) -> SubmissionResult:
    slug = submission.workflow_slug
    locked = tally_store.lock_one_with_workflow(workflow_slug=slug, galaxy_id_str=submission.galaxy_id_str,
                                                idempotency_key=submission.idempotency_key)
    if locked is not None:
        workflow, tallies = locked
    else:
        workflow = require_workflow(workflow_settings(slug=slug), slug=slug)
        tallies = tally_store.lock_one(workflow_id=workflow.id, galaxy_id_str=submission.galaxy_id_str,
                                       idempotency_key=submission.idempotency_key)
    result = decide(submission, workflow=workflow, volunteer=volunteer, tallies=tallies, now=timezone.now(),
                    user_agent=user_agent, is_simulated=is_simulated)
    _write(tallies)
    return result


def submit_classifications(*, submissions: list[Submission], volunteer: Volunteer, user_agent: str = "",
                           is_simulated: bool = False) -> list[BatchOutcome]:
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
        return _submit_batch(submissions, workflows=workflows, volunteer=volunteer, user_agent=user_agent,
                             is_simulated=is_simulated)
    except IntegrityError:
        return [_settle_alone(submission, volunteer=volunteer, user_agent=user_agent, is_simulated=is_simulated)
                for submission in submissions]


@transaction.atomic
def _submit_batch(submissions: list[Submission], *, workflows: dict[str, Workflow | None], volunteer: Volunteer,
                  user_agent: str, is_simulated: bool) -> list[BatchOutcome]:
    """The batch as a few set-wise statements instead of three round trips per submission; each
    item is decided in lock order exactly as a single submit is."""
    known = [s for s in submissions if workflows[s.workflow_slug] is not None]
    tallies = tally_store.lock_many(
        workflow_ids=sorted({workflows[s.workflow_slug].id for s in known}),
        galaxy_id_strs=sorted({s.galaxy_id_str for s in known}),
        idempotency_keys=sorted({s.idempotency_key for s in submissions}), volunteer_key=volunteer.key)
    now = timezone.now()
    outcomes: list[BatchOutcome | None] = [None] * len(submissions)
    for index in sorted(range(len(submissions)),
                        key=lambda i: (submissions[i].workflow_slug, submissions[i].galaxy_id_str)):
        submission = submissions[index]
        try:
            workflow = require_workflow(workflows[submission.workflow_slug], slug=submission.workflow_slug)
            outcomes[index] = BatchOutcome(result=decide(
                submission, workflow=workflow, volunteer=volunteer, tallies=tallies, now=now, user_agent=user_agent,
                is_simulated=is_simulated))
        except DomainError as exc:
            outcomes[index] = BatchOutcome(error=exc)
    _write(tallies)
    return outcomes


def _settle_alone(submission: Submission, *, volunteer: Volunteer, user_agent: str,
                  is_simulated: bool) -> BatchOutcome:
    try:
        return BatchOutcome(result=submit_classification(submission=submission, volunteer=volunteer,
                                                         user_agent=user_agent, is_simulated=is_simulated))
    except DomainError as exc:
        return BatchOutcome(error=exc)


def _write(tallies: tally_store.Tallies) -> None:
    """The one writer of both paths: what the decisions staged, then the domain event per counted vote."""
    for classification in tallies.write():
        if classification.counted:
            classification_counted.send(sender=Classification, workflow_id=classification.workflow_id,
                                        classification_id=classification.id)


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


def shadow_ban(*, volunteer_key: str, banned_by_id: int | None = None, reason: str = "") -> ShadowBan:
    """Shadow-ban a volunteer (``user:<id>`` or ``anon:<id>``): their counted votes leave the
    tallies, the touched galaxies' retirement is decided again on the votes left
    (decision.apply_retirement_rule), and their new votes are stored ``shadowed`` (not counted)
    while every answer they get stays the same. Banning again repeats the recount (harmless).

    Three transactions, in this order, rather than one: the ban must be committed before the
    recount reads, or a submit that ran its insert before seeing the ban could commit a counted
    vote after the recount. Between them, on PostgreSQL, a SHARE lock on the classification
    table waits for every write transaction that started before the ban was visible (it holds
    new submits back only for that wait, not for the recount). SQLite runs one writer at a time.
    """
    try:
        ShadowBan._meta.get_field("volunteer_key").run_validators(volunteer_key)
    except ValidationError as exc:
        raise DomainError(exc.messages[0], field="volunteer_key") from None
    with transaction.atomic():
        ban, _ = ShadowBan.objects.get_or_create(volunteer_key=volunteer_key,
                                                 defaults={"banned_by_id": banned_by_id, "reason": reason})
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Classification._meta.db_table} IN SHARE MODE")
    return _withdraw_votes(ban_id=ban.pk)


@transaction.atomic
def _withdraw_votes(*, ban_id: int) -> ShadowBan:
    """Under the status rows' locks (taken in the batches' order: workflow, galaxy id_str), turn
    the volunteer's counted votes into shadowed ones and recount every galaxy they touched from
    its remaining counted classifications."""
    ban = ShadowBan.objects.select_for_update().get(pk=ban_id)
    votes = Classification.objects.filter(volunteer_key=ban.volunteer_key, counted=True)
    pairs = set(votes.values_list("workflow_id", "galaxy_id"))
    if not pairs:
        return ban
    statuses = _lock_statuses(pairs)
    ban.withdrawn_votes += votes.update(counted=False, shadowed=True)
    ban.save(update_fields=["withdrawn_votes"])
    _recount(statuses)
    return ban


def lift_shadow_ban(*, volunteer_key: str) -> int:
    """Lift a shadow ban (services.shadow_ban's counterpart): the volunteer's votes count again
    exactly as if never banned — each shadowed vote (their first of a galaxy, withdrawn or cast
    while banned) becomes counted — the touched galaxies are recounted and their retirement
    decided again (decision.apply_retirement_rule), and new votes count. Returns how many votes
    count again; UnknownShadowBan if the volunteer is not banned.

    The same three steps as the ban, in the same order: the ban's removal is committed first;
    on PostgreSQL a SHARE lock on the classification table then waits for every write that
    started while the ban was still visible (a submit that stored a vote as shadowed after the
    restore would leave it uncounted); then the restore and the recount run under the status
    rows' locks. A shadowed vote whose galaxy meanwhile got a counted vote of the volunteer (cast
    after the lift, before the restore) stays uncounted, as a repeat."""
    with transaction.atomic():
        deleted, _ = ShadowBan.objects.filter(volunteer_key=volunteer_key).delete()
    if not deleted:
        raise UnknownShadowBan(f"{volunteer_key!r} is not shadow-banned", field="volunteer_key")
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {Classification._meta.db_table} IN SHARE MODE")
    return _restore_votes(volunteer_key=volunteer_key)


@transaction.atomic
def _restore_votes(*, volunteer_key: str) -> int:
    shadowed = Classification.objects.filter(volunteer_key=volunteer_key, shadowed=True)
    pairs = set(shadowed.values_list("workflow_id", "galaxy_id"))
    if not pairs:
        return 0
    statuses = _lock_statuses(pairs)
    counted_meanwhile = Classification.objects.filter(volunteer_key=OuterRef("volunteer_key"), counted=True,
                                                      workflow_id=OuterRef("workflow_id"),
                                                      galaxy_id=OuterRef("galaxy_id"))
    restored = shadowed.filter(~Exists(counted_meanwhile)).update(counted=True, shadowed=False)
    shadowed.update(shadowed=False)  # the rest: repeats of a vote that counts
    _recount(statuses)
    return restored


def _lock_statuses(pairs: set[tuple[int, int]]) -> dict[tuple[int, int], SubjectStatus]:
    """The status rows of these (workflow id, galaxy id) pairs, locked in the batches' order
    (workflow, galaxy id_str), so a ban or lift cannot deadlock with submits."""
    workflow_ids, galaxy_ids = sorted({w for w, _ in pairs}), sorted({g for _, g in pairs})
    locked = (SubjectStatus.objects.filter(workflow_id__in=workflow_ids, galaxy_id__in=galaxy_ids)
              .select_related("galaxy").order_by("workflow_id", "galaxy__id_str").select_for_update(of=("self",)))
    return {(s.workflow_id, s.galaxy_id): s for s in locked if (s.workflow_id, s.galaxy_id) in pairs}


def _recount(statuses: dict[tuple[int, int], SubjectStatus]) -> None:
    """Each locked status row's tally from its galaxy's counted classifications (each read
    against the tree version it was validated with), then the retirement rule on it."""
    workflow_ids = sorted({w for w, _ in statuses})
    galaxy_ids = sorted({g for _, g in statuses})
    for status in statuses.values():
        status.vote_counts, status.classification_count = {}, 0
    trees = _trees_by_version(workflow_ids)
    remaining = Classification.objects.filter(workflow_id__in=workflow_ids, galaxy_id__in=galaxy_ids, counted=True)
    for workflow_id, galaxy_id, version, answers in remaining.order_by().values_list(
            "workflow_id", "galaxy_id", "workflow_version", "annotations").iterator(chunk_size=2000):
        status = statuses.get((workflow_id, galaxy_id))
        if status is None:
            continue
        tree = trees[workflow_id].get(version) or trees[workflow_id][None]
        for column in tree.path_columns((a["question"], a["answer"]) for a in answers):
            status.vote_counts[column] = status.vote_counts.get(column, 0) + 1
        status.classification_count += 1
    now = timezone.now()
    workflows = Workflow.objects.in_bulk(workflow_ids)
    for status in statuses.values():
        apply_retirement_rule(status=status, workflow=workflows[status.workflow_id], now=now)
        status.updated_at = now
    SubjectStatus.objects.bulk_update(list(statuses.values()), ["vote_counts", "classification_count", "retired_at",
                                                                "retirement_reason", "updated_at"], batch_size=2000)


def _trees_by_version(workflow_ids: list[int]) -> dict[int, dict[int | None, DecisionTree]]:
    """Each workflow's tree per version number (a vote is read against the tree it was
    validated with), plus the current tree under None."""
    trees: dict[int, dict[int | None, DecisionTree]] = {
        workflow.pk: {None: workflow.decision_tree} for workflow in Workflow.objects.filter(pk__in=workflow_ids)}
    for version in WorkflowVersion.objects.filter(workflow_id__in=workflow_ids):
        trees[version.workflow_id][version.number] = DecisionTree.from_dict(version.tree)
    return trees
