"""Writes of the workbench: expert classifications, flags, retirement overrides (through
``classifications.services.override_retirement``) and the review scores of a model version."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from classifications.models import Classification, ShadowBan, SubjectStatus
from classifications.services import lift_shadow_ban, override_retirement, shadow_ban
from classifier.tree import AnnotationError
from core.storage import sha256_of_bytes
from galaxies.models import Galaxy
from retraining.models import GalaxyEmbedding, ModelVersion, Prediction
from retraining.selectors import active_model_version, embedding_chunks
from retraining.services import activate_model_version
from workflows.models import Workflow

from . import vectors
from .disagreement import disagreement
from .errors import (
    AlreadyActive,
    FlagAlreadyResolved,
    InvalidExpertAnnotations,
    InvalidQuery,
    ReasonRequired,
    RetirementUnchanged,
    ScoresPending,
    UnknownFlag,
    UnknownModelVersion,
    UnknownVolunteer,
)
from .export import FORMATS, export_catalog
from .models import (
    EmbeddingIndex,
    ExpertClassification,
    ExportJob,
    Flag,
    IntervalExtreme,
    RetirementOverride,
    ReviewScore,
)
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


def previous_version(version: ModelVersion) -> ModelVersion | None:
    """The version before this one that predicted the same answers (what ``changed`` compares with)."""
    return (ModelVersion.objects.filter(workflow_id=version.workflow_id, number__lt=version.number,
                                        predictions_complete=True, tree_hash=version.tree_hash)
            .order_by("-number").first())


class _Extremes:
    """The running ``k`` widest and ``k`` narrowest intervals of every answer over the refresh's
    chunks, ties at the cut kept (so every galaxy at least as extreme as the last one is there)."""

    def __init__(self, k: int, n_answers: int):
        self.k = k
        self.kept = {(a, end): (np.empty(0), np.empty(0, dtype=np.int64))
                     for a in range(n_answers) for end in IntervalExtreme.End.values}

    def add(self, galaxy_ids: np.ndarray, widths: np.ndarray) -> None:
        for (a, end), (kept_widths, kept_ids) in self.kept.items():
            w, ids = np.concatenate([kept_widths, widths[:, a]]), np.concatenate([kept_ids, galaxy_ids])
            if len(w) > self.k:
                key = end * w
                keep = key >= np.partition(key, len(key) - self.k)[len(key) - self.k]
                w, ids = w[keep], ids[keep]
            self.kept[(a, end)] = (w, ids)

    def rows(self, version: ModelVersion) -> list[IntervalExtreme]:
        return [IntervalExtreme(model_version=version, galaxy_id=int(gid), answer=a, end=end, width=float(w))
                for (a, end), (widths, ids) in self.kept.items() for w, gid in zip(widths, ids)]


def refresh_review_scores(*, model_version_id: int, chunk_size: int | None = None) -> int:
    """(Re)compute the review scores of every galaxy this version predicted, chunk by chunk in
    galaxy-id order (one transaction per chunk, so memory stays flat and a crash keeps the
    finished chunks), then its interval extremes. Returns how many score rows were written."""
    version = ModelVersion.objects.select_related("workflow").filter(pk=model_version_id).first()
    if version is None:
        return 0
    chunk_size = chunk_size or settings.REVIEW_REFRESH_CHUNK_SIZE
    tree = version.workflow.decision_tree
    if version.tree_hash != version.workflow.tree_hash or list(version.answer_columns) != list(tree.answer_columns):
        return 0  # predicts another tree version: its columns cannot be compared with these votes
    previous = previous_version(version)
    slices = [(q.slice.start, q.slice.stop) for q in tree.questions]
    extremes = _Extremes(settings.REVIEW_WIDTH_EXTREMES, len(tree.answer_columns))
    written, last = 0, 0
    while True:
        rows = list(Prediction.objects.filter(model_version=version, galaxy_id__gt=last).order_by("galaxy_id")
                    .values_list("galaxy_id", "fractions", "lower", "upper", "acquisition", "entropy")[:chunk_size])
        if not rows:
            break
        last = rows[-1][0]
        galaxy_ids = [row[0] for row in rows]
        votes = dict(SubjectStatus.objects.filter(workflow_id=version.workflow_id, galaxy_id__in=galaxy_ids)
                     .values_list("galaxy_id", "vote_counts"))
        before = dict(Prediction.objects.filter(model_version=previous, galaxy_id__in=galaxy_ids)
                      .values_list("galaxy_id", "fractions")) if previous else {}
        fractions, lower, upper = (np.asarray([row[i] for row in rows], dtype=float) for i in (1, 2, 3))
        extremes.add(np.asarray(galaxy_ids, dtype=np.int64), upper - lower)
        counts = np.stack([tree.counts_vector(votes.get(gid) or {}) for gid in galaxy_ids])
        scores = disagreement(fractions=fractions, lower=lower, upper=upper, counts=counts, slices=slices,
                              min_votes=settings.REVIEW_MIN_VOTES)
        first_question = slices[0]
        now = timezone.now()
        objects = [ReviewScore(model_version=version, galaxy_id=gid, acquisition=row[4], entropy=row[5],
                               disagreement=None if np.isnan(score) else float(score),
                               votes_at_refresh=int(count[first_question[0]:first_question[1]].sum()),
                               changed=(float(np.abs(np.asarray(before[gid]) - mean).max()) if gid in before
                                        else None),
                               refreshed_at=now)
                   for gid, row, score, count, mean in zip(galaxy_ids, rows, scores, counts, fractions)]
        with transaction.atomic():
            ReviewScore.objects.bulk_create(
                objects, update_conflicts=True, unique_fields=["model_version", "galaxy"],
                update_fields=["acquisition", "entropy", "disagreement", "votes_at_refresh", "changed",
                               "refreshed_at"])
        written += len(objects)
    with transaction.atomic():
        IntervalExtreme.objects.filter(model_version=version).delete()
        IntervalExtreme.objects.bulk_create(extremes.rows(version), batch_size=5000)
    return written


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
    key = _volunteer_key(workflow=workflow, galaxy=galaxy, pseudonym=pseudonym)
    return shadow_ban(volunteer_key=key, banned_by_id=user_id, reason=reason)


def lift_shadow_ban_volunteer(*, workflow: Workflow, galaxy: Galaxy, pseudonym: str) -> int:
    """Lift the shadow ban (classifications.services.lift_shadow_ban) of the volunteer behind a
    pseudonym of this galaxy's dossier; returns how many of their votes count again."""
    return lift_shadow_ban(volunteer_key=_volunteer_key(workflow=workflow, galaxy=galaxy, pseudonym=pseudonym))


def _volunteer_key(*, workflow: Workflow, galaxy: Galaxy, pseudonym: str) -> str:
    keys = (Classification.objects.filter(workflow=workflow, galaxy=galaxy).order_by()
            .values_list("volunteer_key", flat=True).distinct())
    key = next((k for k in keys if pseudonym_of(k) == pseudonym), None)
    if key is None:
        raise UnknownVolunteer(f"no classification of {galaxy.id_str} is by {pseudonym!r}", field="pseudonym")
    return key


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


def build_embedding_index(*, encoder_version_id: int) -> EmbeddingIndex | None:
    """Build the neighbour index of an encoder version's embeddings and store it (replacing an
    older one), unless one already holds as many vectors. Two passes over the embeddings, one
    chunk in memory at a time (the first trains the inverted file's cells on the first rows in
    galaxy-id order, an order unrelated to morphology); None without embeddings."""
    n = GalaxyEmbedding.objects.filter(model_version_id=encoder_version_id).count()
    existing = EmbeddingIndex.objects.filter(encoder_version_id=encoder_version_id).first()
    if n == 0 or (existing is not None and existing.vectors == n):
        return existing
    started = time.perf_counter()
    index = dim = kind = None
    sample: list[np.ndarray] = []
    for _ids, chunk in embedding_chunks(model_version_id=encoder_version_id):
        if index is None:
            dim = chunk.shape[1]
            index, kind = vectors.new_index(dim=dim, n_vectors=n, exact_limit=settings.REVIEW_EXACT_INDEX_LIMIT)
        wanted = vectors.training_size(index) - sum(len(s) for s in sample)
        if wanted <= 0:
            break
        sample.append(chunk[:wanted])
    if sample:
        vectors.train(index, np.concatenate(sample))
    for ids, chunk in embedding_chunks(model_version_id=encoder_version_id):
        vectors.add(index, ids, chunk)
    data = vectors.to_bytes(index)
    sha256 = sha256_of_bytes(data)
    version = ModelVersion.objects.select_related("workflow").get(pk=encoder_version_id)
    name = default_storage.save(f"embedding_indexes/{version.workflow.slug}-v{version.number}-{sha256[:12]}.faiss",
                                ContentFile(data))
    with transaction.atomic():
        built, _ = EmbeddingIndex.objects.update_or_create(
            encoder_version_id=encoder_version_id,
            defaults={"file": name, "sha256": sha256, "kind": kind, "vectors": index.ntotal, "dim": dim,
                      "build_seconds": time.perf_counter() - started})
    if existing is not None and existing.file.name != name:
        transaction.on_commit(lambda: default_storage.delete(existing.file.name))
    return built


@transaction.atomic
def request_export(*, workflow: Workflow, fmt: str, user_id: int, model_version_number: int | None = None) -> ExportJob:
    """Record an export of the catalogue (``review.signals`` queues its task after the commit)."""
    if fmt not in FORMATS:
        raise InvalidQuery(f"format must be one of {', '.join(FORMATS)}", field="format")
    if model_version_number is None:
        version = active_model_version(workflow=workflow)
    else:
        version = ModelVersion.objects.filter(workflow=workflow, number=model_version_number).first()
        if version is None:
            raise InvalidQuery(f"{workflow.slug} has no model version {model_version_number}", field="model_version")
    return ExportJob.objects.create(workflow=workflow, requested_by_id=user_id, format=fmt, model_version=version)


def run_export_job(*, job_id: int) -> ExportJob | None:
    """Write a queued export into the storage: claimed under a lock (a redelivered task finds
    it running or finished and does nothing), streamed to a local file chunk by chunk
    (``review.export``: memory stays flat), then saved to the storage; a failure is recorded."""
    with transaction.atomic():
        job = ExportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.state != ExportJob.State.QUEUED:
            return job
        job.state, job.started_at = ExportJob.State.RUNNING, timezone.now()
        job.save(update_fields=["state", "started_at"])
    scratch = Path(settings.STORAGE_CACHE_DIR) / "exports"
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / f"{job.workflow.slug}-{job.pk}.{job.format}"
    try:
        job.rows = export_catalog(workflow=job.workflow, fmt=job.format, out=out, model_version=job.model_version)
        with out.open("rb") as handle:
            job.file.save(out.name, File(handle), save=False)
        job.bytes, job.state = out.stat().st_size, ExportJob.State.SUCCEEDED
    except Exception as exc:  # noqa: BLE001 — any failure is the job's outcome, shown to its requester
        job.state, job.error = ExportJob.State.FAILED, f"{type(exc).__name__}: {exc}"
    finally:
        out.unlink(missing_ok=True)
    job.finished_at = timezone.now()
    job.save(update_fields=["state", "rows", "file", "bytes", "error", "finished_at"])
    return job
