"""The training run's state machine, and the only code that writes a ``TrainingRun``.

``queued → running → succeeded | failed | cancelled``; while running, ``stage`` goes
``training → predicting → applying → done``. Every transition locks the run row, re-checks
its status (and, for a worker's writes, that its attempt still owns the run) and then
writes, so a redelivered or late message is harmless. The run log gets one line per
transition, always through :func:`_log`. Nothing here sends tasks or imports torch: the
pipeline computes, this module records, ``tasks`` chains the next step.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from classifications.models import Classification
from workflows.models import Workflow

from . import gate
from .errors import CannotActivate, NoEmbeddings, RunAlreadyActive, RunFinished
from .gate import GateFigures
from .models import GalaxyEmbedding, ModelVersion, Prediction, TrainingRun
from .selectors import active_encoder_version
from .services import activate_model_version, insert_predictions


class RunLost(RuntimeError):
    """The run was cancelled, reaped or taken over while this process worked on it."""


def _log(run: TrainingRun, message: str) -> None:
    run.log = f"{run.log}{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"


def worker_identity() -> str:
    """``host:pid`` of this process, recorded on the run it trains."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/status")
    if status.is_file():
        try:
            return "\nState:\tZ" not in status.read_text()
        except OSError:
            return True
    return True


def previous_attempt_is_dead(run: TrainingRun, *, now=None) -> bool:
    """Whether the worker that last took the run up is gone: on this host we can ask the
    kernel; elsewhere we go by the heartbeat."""
    host, _, pid = run.worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return not _pid_alive(int(pid))
    now = now or timezone.now()
    last_sign = run.heartbeat_at or run.started_at
    return last_sign is None or now - last_sign > timedelta(seconds=settings.RETRAIN_HEARTBEAT_TIMEOUT)


def _warm_start_version(workflow: Workflow) -> ModelVersion | None:
    encoder = active_encoder_version(workflow=workflow)
    return encoder if encoder is not None and encoder.tree_hash == workflow.tree_hash else None


def _head_encoder(workflow: Workflow) -> ModelVersion:
    """The encoder version a head run of ``workflow`` builds on: the active model's encoder,
    predicting the current tree, with stored embeddings."""
    encoder = _warm_start_version(workflow)
    if encoder is None or not GalaxyEmbedding.objects.filter(model_version=encoder).exists():
        raise NoEmbeddings(f"'{workflow.slug}' has no active encoder version with stored embeddings for its "
                           f"current tree; train an encoder run first", field="workflow")
    return encoder


# ---------------------------------------------------------------- queued
@transaction.atomic
def start_training_run(*, workflow: Workflow, trigger: str, triggered_by_id: int | None = None,
                       full_retrain: bool = False, preset: str | None = None,
                       overrides: dict[str, Any] | None = None, kind: str = TrainingRun.Kind.ENCODER,
                       expert_weight: int = 0) -> TrainingRun:
    """Queue a run of ``workflow``; the caller sends it to a worker (``tasks.enqueue_training``)
    or executes it in-process (``pipeline.execute_run_inline``).

    A ``head`` run trains only a Bayesian head (``classifier.heads.HeadConfig``:
    ``HEAD_REFRESH_CONFIG`` plus ``overrides``) on the stored embeddings of the active encoder
    version (:class:`NoEmbeddings` without one); the rest of this docstring is about encoder runs.

    Warm-starts from the active model when its tree is the workflow's current tree, unless
    ``full_retrain``. The training configuration is a ``TrainConfig`` preset
    (``RETRAIN_TRAIN_PRESET`` unless ``preset``) plus ``RETRAIN_TRAIN_OVERRIDES`` and
    ``overrides``. Raises :class:`RunAlreadyActive` while another run of the workflow is queued
    or running (the database enforces it too); a running run silent for
    ``RETRAIN_HEARTBEAT_TIMEOUT`` is failed first (where no beat recovers it, e.g. the demo,
    asking for a new run is what frees the workflow). ``expert_weight`` > 0 adds that many votes per
    expert answer to the training targets (``vote_sources``)."""
    silent_before = timezone.now() - timedelta(seconds=settings.RETRAIN_HEARTBEAT_TIMEOUT)
    for silent in TrainingRun.objects.filter(workflow=workflow, kind=kind, status=TrainingRun.Status.RUNNING,
                                             heartbeat_at__lt=silent_before).only("pk", "attempt", "heartbeat_at"):
        fail_run(run_id=silent.pk, attempt=silent.attempt,
                 error=f"worker lost: no heartbeat since {silent.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC")
    active = TrainingRun.objects.filter(workflow=workflow, kind=kind, status__in=TrainingRun.ACTIVE_STATUSES).first()
    if active is not None:
        raise RunAlreadyActive(f"{kind} run {active.pk} of '{workflow.slug}' is already {active.status}",
                               field="workflow", detail={"run": active.pk})
    run = TrainingRun(workflow=workflow, kind=kind, workflow_version=workflow.version, tree_hash=workflow.tree_hash,
                      trigger=trigger, triggered_by_id=triggered_by_id, expert_weight=expert_weight)
    if kind == TrainingRun.Kind.HEAD:
        run.init_model_version = _head_encoder(workflow)
        run.hyperparameters = {"head": {**settings.HEAD_REFRESH_CONFIG, **(overrides or {})}}
        _log(run, f"head refresh queued by {trigger}, on the embeddings of model v{run.init_model_version.number}")
    else:
        init = None if full_retrain else _warm_start_version(workflow)
        run.full_retrain, run.init_model_version = full_retrain or init is None, init
        run.hyperparameters = {"preset": preset or settings.RETRAIN_TRAIN_PRESET,
                               "overrides": {**settings.RETRAIN_TRAIN_OVERRIDES, **(overrides or {})}}
        _log(run, f"queued by {trigger}" + (f", warm start from model v{init.number}" if init else ", full retrain"))
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError as exc:
        raise RunAlreadyActive(f"a {kind} run of '{workflow.slug}' is already queued or running",
                               field="workflow") from exc
    return run


def _enough_new_votes(*, workflow_id: int, since: int, votes: int, volunteers: int) -> bool:
    """At least ``votes`` counted classifications newer than id ``since``, from at least
    ``volunteers`` distinct volunteers. Both counts stop at their bound; the distinct count
    reads only the rows newer than ``since``."""
    new = Classification.objects.filter(workflow_id=workflow_id, counted=True, id__gt=since)
    if new[:votes].count() < votes:
        return False
    return new.order_by().values("volunteer_key").distinct()[:volunteers].count() >= volunteers


def maybe_start_automatic_run(*, workflow_id: int) -> TrainingRun | None:
    """Queue a run once ``RETRAIN_AFTER_CLASSIFICATIONS`` counted classifications from at least
    ``RETRAIN_MIN_DISTINCT_VOLUNTEERS`` volunteers arrived since the newest run's snapshot (0
    disables). Cheap: it counts only rows newer than that."""
    threshold = settings.RETRAIN_AFTER_CLASSIFICATIONS
    if threshold <= 0:
        return None
    runs = TrainingRun.objects.filter(workflow_id=workflow_id, kind=TrainingRun.Kind.ENCODER)
    if runs.filter(status__in=TrainingRun.ACTIVE_STATUSES).exists():
        return None
    since = runs.aggregate(last=Max("snapshot_last_classification_id"))["last"] or 0
    if not _enough_new_votes(workflow_id=workflow_id, since=since, votes=threshold,
                             volunteers=settings.RETRAIN_MIN_DISTINCT_VOLUNTEERS):
        return None
    try:
        return start_training_run(workflow=Workflow.objects.get(pk=workflow_id), trigger=TrainingRun.Trigger.SCHEDULE)
    except RunAlreadyActive:
        return None


def maybe_start_head_refresh(*, workflow_id: int) -> TrainingRun | None:
    """Queue a head refresh once ``HEAD_REFRESH_AFTER_CLASSIFICATIONS`` counted classifications
    from at least ``HEAD_REFRESH_MIN_DISTINCT_VOLUNTEERS`` volunteers arrived since the votes the current scores know of (the newest head run's snapshot, or the
    newest succeeded encoder run's; 0 disables). Needs an active encoder with embeddings."""
    threshold = settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS
    if threshold <= 0:
        return None
    runs = TrainingRun.objects.filter(workflow_id=workflow_id)
    if runs.filter(kind=TrainingRun.Kind.HEAD, status__in=TrainingRun.ACTIVE_STATUSES).exists():
        return None
    known = runs.filter(Q(kind=TrainingRun.Kind.HEAD) | Q(status=TrainingRun.Status.SUCCEEDED))
    since = known.aggregate(last=Max("snapshot_last_classification_id"))["last"] or 0
    if not _enough_new_votes(workflow_id=workflow_id, since=since, votes=threshold,
                             volunteers=settings.HEAD_REFRESH_MIN_DISTINCT_VOLUNTEERS):
        return None
    try:
        return start_training_run(workflow=Workflow.objects.get(pk=workflow_id), trigger=TrainingRun.Trigger.SCHEDULE,
                                  kind=TrainingRun.Kind.HEAD)
    except (RunAlreadyActive, NoEmbeddings):
        return None


# ---------------------------------------------------------------- running: training
@dataclass(frozen=True)
class Claim:
    run: TrainingRun
    resumed: bool


@transaction.atomic
def claim_run(*, run_id: int, worker: str) -> Claim | None:
    """Take a run up for training. A queued run starts; a running run whose worker died is
    taken over (training resumes from its last epoch); anything else — a duplicate delivery
    while its worker is alive, a finished run — returns None and must be left alone."""
    run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None:
        return None
    now = timezone.now()
    if run.status == TrainingRun.Status.QUEUED:
        # A run the reaper queued again after its worker went silent resumes like a takeover.
        resumed = run.attempt > 0
        run.status, run.started_at = TrainingRun.Status.RUNNING, run.started_at or now
        _log(run, f"attempt {run.attempt + 1} resumes on {worker}" if resumed else f"started on {worker}")
    elif (run.status == TrainingRun.Status.RUNNING and run.stage == TrainingRun.Stage.TRAINING
          and previous_attempt_is_dead(run, now=now)):
        resumed = True
        _log(run, f"worker {run.worker} lost; attempt {run.attempt + 1} resumes on {worker}")
    else:
        return None
    run.attempt += 1
    run.worker, run.heartbeat_at, run.stage = worker, now, TrainingRun.Stage.TRAINING
    run.save(update_fields=["status", "started_at", "attempt", "worker", "heartbeat_at", "stage", "log"])
    return Claim(run=run, resumed=resumed)


def _owned(run_id: int, attempt: int):
    return TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING, attempt=attempt)


def record_config(*, run_id: int, attempt: int, config: dict[str, Any]) -> None:
    """Store the resolved training configuration next to the preset and overrides it came from."""
    run = _owned(run_id, attempt).only("hyperparameters").first()
    if run is None:
        raise RunLost(f"run {run_id} is no longer running")
    _owned(run_id, attempt).update(hyperparameters={**run.hyperparameters, "config": config})


def record_snapshot(*, run_id: int, attempt: int, **snapshot: Any) -> None:
    """Store where the frozen training set is and what it holds (``snapshot_*`` fields)."""
    if not _owned(run_id, attempt).update(snapshot_taken_at=timezone.now(), **snapshot):
        raise RunLost(f"run {run_id} is no longer running")


def record_progress(*, run_id: int, attempt: int, progress: dict[str, Any],
                    history: list[dict[str, Any]] | None = None) -> bool:
    """Store progress and a heartbeat; False when the run is no longer this attempt's to
    run (cancelled, reaped or taken over), which tells training to stop."""
    fields: dict[str, Any] = {"progress": progress, "heartbeat_at": timezone.now()}
    if history is not None:
        fields["history"] = history
    return bool(_owned(run_id, attempt).update(**fields))


def record_model_version(*, run_id: int, attempt: int, checkpoint_name: str, checkpoint_sha256: str,
                         checkpoint_bytes: int, metrics: dict[str, Any], train_metrics: dict[str, Any],
                         history: list[dict[str, Any]], device: str, chunks: list[list[int]],
                         queue_rule: dict[str, Any] | None = None) -> ModelVersion:
    """Training → predicting: store an inactive version of the stored checkpoint and the
    catalogue chunks to predict, all or nothing (a head, scored already, brings its
    ``queue_rule``; an encoder's is recorded once its catalogue is predicted). Raises
    :class:`RunLost` unless this attempt still owns the run."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if run.status != TrainingRun.Status.RUNNING or run.attempt != attempt:
            raise RunLost(f"run {run_id} is {run.status}")
        workflow = Workflow.objects.select_for_update().get(pk=run.workflow_id)
        number = (ModelVersion.objects.filter(workflow=workflow).aggregate(n=Max("number"))["n"] or 0) + 1
        version = ModelVersion.objects.create(
            workflow=workflow, number=number, run=run, kind=run.kind, checkpoint=checkpoint_name,
            encoder_id=run.init_model_version_id if run.kind == TrainingRun.Kind.HEAD else None,
            checkpoint_sha256=checkpoint_sha256, checkpoint_bytes=checkpoint_bytes, tree_hash=run.tree_hash,
            answer_columns=list(workflow.decision_tree.answer_columns), metrics=metrics, train_metrics=train_metrics,
            queue_rule=queue_rule or {})
        # An empty catalogue has nothing to predict: straight on to applying.
        run.stage = TrainingRun.Stage.PREDICTING if chunks else TrainingRun.Stage.APPLYING
        run.trained_at, run.device = timezone.now(), device
        run.history = [{k: h.get(k) for k in ("epoch", "train_loss", "val_loss", "seconds")} for h in history]
        run.prediction_chunks, run.prediction_chunks_done = chunks, []
        run.heartbeat_at = timezone.now()
        _log(run, f"trained model v{number}; predicting {len(chunks)} chunk(s)")
        run.save()
    return version


@transaction.atomic
def fail_run(*, run_id: int, attempt: int | None, error: str) -> bool:
    """Mark an unfinished run failed (only if ``attempt`` still owns it). The active model is untouched."""
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    if run.status not in TrainingRun.ACTIVE_STATUSES or (attempt is not None and run.attempt != attempt):
        return False
    run.status, run.finished_at, run.error = TrainingRun.Status.FAILED, timezone.now(), error[-20000:]
    _log(run, f"failed: {error.strip().splitlines()[-1] if error.strip() else 'unknown error'}")
    run.save(update_fields=["status", "finished_at", "error", "log"])
    return True


@transaction.atomic
def cancel_training_run(*, run_id: int) -> TrainingRun:
    """Cancel a queued or running run at once; a worker still training it notices at its next
    progress report and stops, and nothing it produces afterwards is kept."""
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    if run.is_finished:
        raise RunFinished(f"run {run.pk} already {run.status}", field="run")
    run.status, run.finished_at = TrainingRun.Status.CANCELLED, timezone.now()
    _log(run, f"cancelled during stage '{run.stage}'")
    run.save(update_fields=["status", "finished_at", "log"])
    return run


@dataclass(frozen=True)
class Recovery:
    """What the reaper did with a silent run, and the message the caller must send for it:
    ``train`` / ``head`` (the run is queued again), ``predict`` (``chunks`` not yet done),
    ``apply``; ``failed`` sends nothing."""
    run_id: int
    action: str
    chunks: tuple[int, ...] = ()


def record_heartbeat(*, run_id: int, attempt: int | None) -> bool:
    """A sign of life from the process working on the run: the attempt that trains it, or
    (``attempt`` None) a prediction chunk. False once the run is no longer there to beat for."""
    owned = (_owned(run_id, attempt) if attempt is not None else
             TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING,
                                        stage=TrainingRun.Stage.PREDICTING))
    return bool(owned.update(heartbeat_at=timezone.now()))


@transaction.atomic
def _recover(run_id: int, now) -> Recovery | None:
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    silent = timedelta(seconds=settings.RETRAIN_HEARTBEAT_TIMEOUT)
    if run.status == TrainingRun.Status.QUEUED:
        # The broker lost the message (a Redis restart without persistence) or a worker is
        # merely busy: either way one more message is harmless, claim_run starts a run once.
        if (run.heartbeat_at or run.created_at) > now - timedelta(seconds=settings.RETRAIN_QUEUED_RESEND):
            return None
        run.heartbeat_at = now
        run.save(update_fields=["heartbeat_at"])
        return Recovery(run.pk, "head" if run.kind == TrainingRun.Kind.HEAD else "train")
    last_sign = run.heartbeat_at or run.started_at
    if run.status != TrainingRun.Status.RUNNING or (last_sign is not None and last_sign > now - silent):
        return None
    if run.attempt >= settings.RETRAIN_MAX_ATTEMPTS:
        # Out of attempts: a predicting run may still be waiting for a busy gpu queue, so it is
        # only given up after the training time limit; anything else now.
        waiting = run.stage in (TrainingRun.Stage.PREDICTING, TrainingRun.Stage.APPLYING)
        limit = max(silent, timedelta(seconds=settings.RETRAIN_SOFT_TIME_LIMIT)) if waiting else silent
        if last_sign is not None and last_sign > now - limit:
            return None
        run.status, run.finished_at = TrainingRun.Status.FAILED, now
        run.error = (f"worker lost: no heartbeat since {last_sign:%Y-%m-%d %H:%M:%S} UTC after "
                     f"{run.attempt} attempt(s)")
        _log(run, f"failed: {run.error}")
        run.save(update_fields=["status", "finished_at", "error", "log"])
        return Recovery(run.pk, "failed")
    if run.kind == TrainingRun.Kind.HEAD or run.stage == TrainingRun.Stage.TRAINING:
        # Back to the queue: the next worker's claim_run resumes from the last stored epoch;
        # the lost attempt, should it come back, can no longer write (its attempt is not the run's).
        recovery = Recovery(run.pk, "head" if run.kind == TrainingRun.Kind.HEAD else "train")
        run.status, run.stage = TrainingRun.Status.QUEUED, TrainingRun.Stage.WAITING
        _log(run, f"worker {run.worker} silent since {last_sign:%H:%M:%S}; queued again to be taken over")
    elif run.stage == TrainingRun.Stage.PREDICTING:
        missing = tuple(i for i in range(len(run.prediction_chunks)) if i not in run.prediction_chunks_done)
        recovery = Recovery(run.pk, "predict", missing)
        run.attempt += 1
        _log(run, f"no prediction chunk heard of since {last_sign:%H:%M:%S}; chunks {list(missing)} sent again")
    else:
        recovery = Recovery(run.pk, "apply")
        run.attempt += 1
        _log(run, f"silent while applying since {last_sign:%H:%M:%S}; applying sent again")
    run.heartbeat_at = now
    run.save(update_fields=["status", "stage", "attempt", "heartbeat_at", "log"])
    return recovery


def recover_stale_runs(*, workflow: Workflow | None = None) -> list[Recovery]:
    """Runs whose worker went silent (killed, OOM, lost machine) or whose message was lost:
    queued again to be taken over, their missing prediction chunks sent again, or — after
    ``RETRAIN_MAX_ATTEMPTS`` — failed, which frees the workflow. Beat calls this every
    ``RETRAIN_REAP_INTERVAL`` s, so a run is recovered within ``RETRAIN_HEARTBEAT_TIMEOUT`` +
    ``RETRAIN_REAP_INTERVAL`` of its last heartbeat (docs/retraining.md, "Lost workers")."""
    now = timezone.now()
    silent_before = now - timedelta(seconds=settings.RETRAIN_HEARTBEAT_TIMEOUT)
    resend_before = now - timedelta(seconds=settings.RETRAIN_QUEUED_RESEND)
    candidates = TrainingRun.objects.filter(
        Q(status=TrainingRun.Status.RUNNING, heartbeat_at__lt=silent_before)
        | Q(status=TrainingRun.Status.QUEUED, created_at__lt=resend_before))
    if workflow is not None:
        candidates = candidates.filter(workflow=workflow)
    recoveries = [_recover(pk, now) for pk in candidates.values_list("pk", flat=True)]
    return [recovery for recovery in recoveries if recovery is not None]


# ---------------------------------------------------------------- running: predicting, applying
def _require_encoder_still_active(run: TrainingRun, workflow: Workflow) -> None:
    """A head scored with one encoder's embeddings must not replace a newer encoder's scores
    (checked under the workflow lock that activation takes too)."""
    current = active_encoder_version(workflow=workflow)
    if current is None or current.pk != run.init_model_version_id:
        raise CannotActivate(f"the head was trained on the embeddings of model v{run.init_model_version.number}, "
                             f"but the active encoder is now "
                             f"{f'v{current.number}' if current else 'none'}", field="model_version")

def still_predicting(run: TrainingRun, chunk_index: int) -> bool:
    return (run.status == TrainingRun.Status.RUNNING and run.stage == TrainingRun.Stage.PREDICTING
            and chunk_index not in run.prediction_chunks_done)


@transaction.atomic
def record_chunk(*, run_id: int, chunk_index: int, rows: list[Prediction],
                 embeddings: list[GalaxyEmbedding] | None = None) -> bool | None:
    """Store one predicted chunk and its galaxies' embeddings (replacing rows of an earlier
    delivery) and mark it done; the
    chunk that completes the set moves the run to 'applying'. Returns None when the chunk is
    no longer wanted (done already, or the run moved on), else whether the set is complete."""
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    if not still_predicting(run, chunk_index):
        return None
    first, last = run.prediction_chunks[chunk_index]
    version_id = ModelVersion.objects.only("pk").get(run_id=run_id).pk
    Prediction.objects.filter(model_version_id=version_id, galaxy_id__gte=first, galaxy_id__lte=last).delete()
    insert_predictions(rows=rows)
    if embeddings is not None:
        GalaxyEmbedding.objects.filter(model_version_id=version_id, galaxy_id__gte=first, galaxy_id__lte=last).delete()
        GalaxyEmbedding.objects.bulk_create(embeddings, batch_size=2000)
    run.prediction_chunks_done = sorted([*run.prediction_chunks_done, chunk_index])
    _log(run, f"chunk {chunk_index} predicted on {worker_identity()}")
    run.heartbeat_at = timezone.now()
    run.progress = {"stage": "predict", "chunks_done": len(run.prediction_chunks_done),
                    "chunks": len(run.prediction_chunks)}
    complete = len(run.prediction_chunks_done) == len(run.prediction_chunks)
    if complete:
        run.stage = TrainingRun.Stage.APPLYING
    run.save(update_fields=["prediction_chunks_done", "log", "heartbeat_at", "progress", "stage"])
    return complete


class ChampionChanged(RuntimeError):
    """Another version became active after the gate's figures were computed: compute them again."""


@transaction.atomic
def finish_run(*, run_id: int, figures: GateFigures) -> TrainingRun:
    """Applying → succeeded. The gate (``gate.decide`` on ``figures``) says whether the new
    version becomes active — its scores the queue priorities, in this same transaction, so the
    queue never mixes two models — or waits for review (inactive, predictions complete, both
    losses recorded on the run). A version that cannot be activated fails the run instead.
    Raises :class:`ChampionChanged` when ``figures`` were computed against a champion that is no
    longer the one (checked under the workflow lock that activation takes too)."""
    run = TrainingRun.objects.select_for_update(of=("self",)).select_related("model_version").get(pk=run_id)
    if run.status != TrainingRun.Status.RUNNING or run.stage != TrainingRun.Stage.APPLYING:
        return run
    version = run.model_version
    ModelVersion.objects.filter(pk=version.pk).update(predictions_complete=True)
    workflow = Workflow.objects.select_for_update().get(pk=run.workflow_id)
    champion = gate.champion_for(run)
    if (champion.pk if champion else None) != figures.champion_id:
        raise ChampionChanged(f"run {run.pk}: the champion is now {champion}, not version {figures.champion_id}")
    decision = gate.decide(figures)
    run.gate_champion_id, run.gate_galaxies = figures.champion_id, figures.n_galaxies
    run.gate_challenger_loss, run.gate_champion_loss = figures.challenger_loss, figures.champion_loss
    run.gate_reason = decision.reason[:300]
    try:
        with transaction.atomic():
            if run.kind == TrainingRun.Kind.HEAD:
                _require_encoder_still_active(run, workflow)
            if decision.activate:
                activate_model_version(model_version_id=version.pk)
    except CannotActivate as exc:
        run.status, run.error = TrainingRun.Status.FAILED, exc.message
        _log(run, f"{run.status}: {run.error}")
    else:
        run.status, run.stage = TrainingRun.Status.SUCCEEDED, TrainingRun.Stage.DONE
        if decision.activate:
            run.gate_decision = TrainingRun.Gate.ACTIVATED
            _log(run, f"{run.status}: model v{version.number} active, queue priorities updated by "
                      f"{version.queue_rule_summary} ({decision.reason})")
        else:
            run.gate_decision = TrainingRun.Gate.AWAITING_REVIEW
            _log(run, f"{run.status}: model v{version.number} awaits review, the active model stays "
                      f"({decision.reason})")
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "stage", "finished_at", "error", "log", "gate_decision", "gate_reason",
                            "gate_champion", "gate_challenger_loss", "gate_champion_loss", "gate_galaxies"])
    return TrainingRun.objects.select_related("model_version").get(pk=run_id)
