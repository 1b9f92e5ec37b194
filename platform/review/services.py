"""Writes of the workbench: expert classifications, flags, retirement overrides (through
``classifications.services.override_retirement``) and the review scores of a model version."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from classifications.models import Classification, ShadowBan, SubjectStatus
from classifications.services import override_retirement, shadow_ban
from classifier.tree import AnnotationError
from galaxies.models import Galaxy
from retraining.models import ModelVersion, Prediction
from retraining.selectors import active_model_version
from retraining.services import activate_model_version
from workflows.models import Workflow

from .disagreement import disagreement
from .errors import (
    AlreadyActive,
    FlagAlreadyResolved,
    InvalidExpertAnnotations,
    ReasonRequired,
    RetirementUnchanged,
    ScoresPending,
    UnknownFlag,
    UnknownModelVersion,
    UnknownVolunteer,
)
from .models import ExpertClassification, Flag, RetirementOverride, ReviewScore
from .selectors import pseudonym as pseudonym_of


@transaction.atomic
def record_expert_classification(*, workflow: Workflow, galaxy: Galaxy, expert_id: int, annotations: Any,
                                 comment: str = "") -> ExpertClassification:
    """Validate the answers through the workflow's tree, as a volunteer's are, and store them as
    this expert's label of the galaxy (replacing their earlier one). Never touches the votes."""
    try:
        path = workflow.decision_tree.validate_annotations(annotations)
    except AnnotationError as exc:
        raise InvalidExpertAnnotations(exc.message, field="annotations", detail={"error": exc.as_dict()})
    label, _ = ExpertClassification.objects.update_or_create(
        workflow=workflow, galaxy=galaxy, expert_id=expert_id,
        defaults={"workflow_version": workflow.version, "comment": comment,
                  "annotations": [{"question": q, "answer": a} for q, a in path]})
    return label


@transaction.atomic
def flag_galaxy(*, galaxy: Galaxy, kind: str, comment: str = "", user_id: int) -> Flag:
    if kind not in Flag.Kind.values:
        raise InvalidExpertAnnotations(f"unknown flag kind {kind!r}; one of {', '.join(Flag.Kind.values)}",
                                       field="kind")
    return Flag.objects.create(galaxy=galaxy, kind=kind, comment=comment, created_by_id=user_id)


@transaction.atomic
def resolve_flag(*, flag_id: int, user_id: int, resolution: str = "") -> Flag:
    flag = Flag.objects.select_for_update().filter(pk=flag_id).first()
    if flag is None:
        raise UnknownFlag(f"no flag {flag_id}", field="flag")
    if flag.resolved_at is not None:
        raise FlagAlreadyResolved(f"flag {flag_id} was resolved at {flag.resolved_at:%Y-%m-%d %H:%M}", field="flag")
    flag.resolved_at, flag.resolved_by_id, flag.resolution = timezone.now(), user_id, resolution
    flag.save(update_fields=["resolved_at", "resolved_by", "resolution"])
    return flag


@transaction.atomic
def set_retirement(*, workflow: Workflow, galaxy: Galaxy, retire: bool, reason: str, user_id: int) -> RetirementOverride:
    """Force-retire or un-retire a galaxy and record who, why and the state before (the
    opposite action undoes it). Refuses an override that would change nothing."""
    reason = reason.strip()
    if not reason:
        raise ReasonRequired("say why the galaxy is " + ("retired" if retire else "un-retired"), field="reason")
    before = SubjectStatus.objects.select_for_update().filter(workflow=workflow, galaxy=galaxy).first()
    was_retired = before is not None and before.retired_at is not None
    if was_retired == retire:
        raise RetirementUnchanged(f"{galaxy.id_str} is already {'retired' if retire else 'not retired'} "
                                  f"in {workflow.slug}", field="retire")
    override_retirement(workflow_id=workflow.pk, galaxy_id=galaxy.pk, retire=retire)
    return RetirementOverride.objects.create(
        workflow=workflow, galaxy=galaxy, reason=reason, created_by_id=user_id,
        action=RetirementOverride.Action.RETIRE if retire else RetirementOverride.Action.UNRETIRE,
        previous_retired_at=before.retired_at if before else None,
        previous_retirement_reason=before.retirement_reason if before else "")


def refresh_review_scores(*, model_version_id: int, chunk_size: int | None = None) -> int:
    """(Re)compute the review scores of every galaxy this version predicted, chunk by chunk in
    galaxy-id order (one transaction per chunk, so memory stays flat and a crash keeps the
    finished chunks). Returns how many rows were written."""
    version = ModelVersion.objects.select_related("workflow").filter(pk=model_version_id).first()
    if version is None:
        return 0
    chunk_size = chunk_size or settings.REVIEW_REFRESH_CHUNK_SIZE
    tree = version.workflow.decision_tree
    if version.tree_hash != version.workflow.tree_hash or list(version.answer_columns) != list(tree.answer_columns):
        return 0  # predicts another tree version: its columns cannot be compared with these votes
    slices = [(q.slice.start, q.slice.stop) for q in tree.questions]
    written, last = 0, 0
    while True:
        rows = list(Prediction.objects.filter(model_version=version, galaxy_id__gt=last).order_by("galaxy_id")
                    .values_list("galaxy_id", "fractions", "lower", "upper", "acquisition", "entropy")[:chunk_size])
        if not rows:
            return written
        last = rows[-1][0]
        galaxy_ids = [row[0] for row in rows]
        votes = dict(SubjectStatus.objects.filter(workflow_id=version.workflow_id, galaxy_id__in=galaxy_ids)
                     .values_list("galaxy_id", "vote_counts"))
        fractions, lower, upper = (np.asarray([row[i] for row in rows], dtype=float) for i in (1, 2, 3))
        counts = np.stack([tree.counts_vector(votes.get(gid) or {}) for gid in galaxy_ids])
        scores = disagreement(fractions=fractions, lower=lower, upper=upper, counts=counts, slices=slices,
                              min_votes=settings.REVIEW_MIN_VOTES)
        first_question = slices[0]
        now = timezone.now()
        objects = [ReviewScore(model_version=version, galaxy_id=gid, acquisition=row[4], entropy=row[5],
                               disagreement=None if np.isnan(score) else float(score),
                               votes_at_refresh=int(count[first_question[0]:first_question[1]].sum()),
                               refreshed_at=now)
                   for gid, row, score, count in zip(galaxy_ids, rows, scores, counts)]
        with transaction.atomic():
            ReviewScore.objects.bulk_create(
                objects, update_conflicts=True, unique_fields=["model_version", "galaxy"],
                update_fields=["acquisition", "entropy", "disagreement", "votes_at_refresh", "refreshed_at"])
        written += len(objects)


def ensure_review_scores(*, workflow: Workflow) -> None:
    """Score the active model's predictions now if no worker has yet and the catalogue is small
    enough to do it within a request (``REVIEW_INLINE_REFRESH_LIMIT``); a big one is left to the
    task the activation queued."""
    version = active_model_version(workflow=workflow)
    if version is None or ReviewScore.objects.filter(model_version=version).exists():
        return
    predicted = Prediction.objects.filter(model_version=version).count()
    if predicted > settings.REVIEW_INLINE_REFRESH_LIMIT:
        raise ScoresPending(f"model v{version.number}'s review scores are being computed ({predicted} galaxies)",
                            field="workflow")
    refresh_review_scores(model_version_id=version.pk)


def shadow_ban_volunteer(*, workflow: Workflow, galaxy: Galaxy, pseudonym: str, reason: str,
                         user_id: int) -> ShadowBan:
    """Shadow-ban (classifications.services.shadow_ban) the volunteer a scientist sees as
    ``pseudonym`` among this galaxy's classifications: the workbench never shows volunteer
    keys, so the ban names what the dossier shows. Not atomic as a whole, by design: the ban
    runs its own transactions (see shadow_ban)."""
    keys = (Classification.objects.filter(workflow=workflow, galaxy=galaxy).order_by()
            .values_list("volunteer_key", flat=True).distinct())
    key = next((k for k in keys if pseudonym_of(k) == pseudonym), None)
    if key is None:
        raise UnknownVolunteer(f"no classification of {galaxy.id_str} is by {pseudonym!r}", field="pseudonym")
    return shadow_ban(volunteer_key=key, banned_by_id=user_id, reason=reason)


def activate_version(*, workflow: Workflow, number: int, user_id: int) -> ModelVersion:
    """A scientist or admin activates a version from the model dashboard (typically one the
    champion/challenger gate held back); ``retraining.services.activate_model_version`` does the
    switch and the queue priorities, and records who."""
    version = ModelVersion.objects.filter(workflow=workflow, number=number).first()
    if version is None:
        raise UnknownModelVersion(f"{workflow.slug} has no model v{number}", field="number")
    if version.is_active:
        raise AlreadyActive(f"{workflow.slug} model v{number} is already the active version", field="number")
    return activate_model_version(model_version_id=version.pk, activated_by_id=user_id)
