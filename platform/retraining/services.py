"""Writes of the retraining loop: starting, claiming, failing and cancelling training runs
(the status machine ``queued → running → succeeded | failed | cancelled``), activating or
rolling back model versions (which rewrites the queue priorities), the automatic trigger
and the stale-run reaper. Nothing here imports torch; the heavy steps are in ``pipeline``."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import FloatField, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from classifications.models import Classification, SubjectStatus
from workflows.models import Workflow

from .errors import CannotActivate, RunAlreadyActive, RunFinished
from .models import ModelVersion, Prediction, TrainingRun

UNSCORED_PRIORITY = -1.0  # galaxies the active model has not scored yet queue after all scored ones


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


def _append_log(run: TrainingRun, message: str) -> None:
    run.log = f"{run.log}{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n"


def active_model_version_for_warm_start(workflow: Workflow) -> ModelVersion | None:
    return ModelVersion.objects.filter(workflow=workflow, is_active=True, tree_hash=workflow.tree_hash).first()


@transaction.atomic
def start_training_run(*, workflow: Workflow, trigger: str, triggered_by_id: int | None = None,
                       full_retrain: bool = False, overrides: dict[str, Any] | None = None,
                       dispatch: bool = True) -> TrainingRun:
    """Queue a run of ``workflow`` and send it to a GPU worker once committed.

    Warm-starts from the active model when its tree is the workflow's current tree, unless
    ``full_retrain``. Raises :class:`RunAlreadyActive` while another run of the workflow is
    queued or running (the database enforces it too). ``dispatch=False`` leaves the run for
    the caller to execute in-process (the demo setup)."""
    reap_stale_runs(workflow=workflow)
    active = TrainingRun.objects.filter(workflow=workflow, status__in=TrainingRun.ACTIVE_STATUSES).first()
    if active is not None:
        raise RunAlreadyActive(f"run {active.pk} of '{workflow.slug}' is already {active.status}", field="workflow",
                               detail={"run": active.pk})
    init = None if full_retrain else active_model_version_for_warm_start(workflow)
    run = TrainingRun(workflow=workflow, workflow_version=workflow.version, tree_hash=workflow.tree_hash,
                      trigger=trigger, triggered_by_id=triggered_by_id, full_retrain=full_retrain or init is None,
                      init_model_version=init,
                      hyperparameters={"preset": settings.RETRAIN_TRAIN_PRESET,
                                       "overrides": {**settings.RETRAIN_TRAIN_OVERRIDES, **(overrides or {})}})
    _append_log(run, f"queued by {trigger}" + (f", warm start from model v{init.number}" if init else ", full retrain"))
    try:
        with transaction.atomic():
            run.save()
    except IntegrityError as exc:
        raise RunAlreadyActive(f"a run of '{workflow.slug}' is already queued or running", field="workflow") from exc
    if dispatch:
        run_id = run.pk
        transaction.on_commit(lambda: _send_to_worker(run_id))
    return run


def _send_to_worker(run_id: int) -> None:
    """Publish the training task; if the broker is unreachable the run fails with that reason
    instead of waiting forever in the queue."""
    from .tasks import train_model

    try:
        train_model.delay(run_id)
    except Exception as exc:  # noqa: BLE001 — any broker/transport error
        fail_run(run_id=run_id, attempt=None, error=f"could not queue the training task: {exc}")


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
        resumed = False
        run.status, run.started_at = TrainingRun.Status.RUNNING, now
        _append_log(run, f"started on {worker}")
    elif (run.status == TrainingRun.Status.RUNNING and run.stage == TrainingRun.Stage.TRAINING
          and previous_attempt_is_dead(run, now=now)):
        resumed = True
        _append_log(run, f"worker {run.worker} lost; attempt {run.attempt + 1} resumes on {worker}")
    else:
        return None
    run.attempt += 1
    run.worker, run.heartbeat_at, run.stage = worker, now, TrainingRun.Stage.TRAINING
    run.save(update_fields=["status", "started_at", "attempt", "worker", "heartbeat_at", "stage", "log"])
    return Claim(run=run, resumed=resumed)


def record_progress(*, run_id: int, attempt: int, progress: dict[str, Any],
                    history: list[dict[str, Any]] | None = None) -> bool:
    """Store progress and a heartbeat; False when the run is no longer this attempt's to
    run (cancelled, reaped or taken over), which tells training to stop."""
    fields: dict[str, Any] = {"progress": progress, "heartbeat_at": timezone.now()}
    if history is not None:
        fields["history"] = history
    return bool(TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING, attempt=attempt)
                .update(**fields))


@transaction.atomic
def fail_run(*, run_id: int, attempt: int | None, error: str) -> bool:
    """Mark a running run failed (only if ``attempt`` still owns it). The active model is untouched."""
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    if run.status not in TrainingRun.ACTIVE_STATUSES or (attempt is not None and run.attempt != attempt):
        return False
    run.status, run.finished_at, run.error = TrainingRun.Status.FAILED, timezone.now(), error[-20000:]
    _append_log(run, f"failed: {error.strip().splitlines()[-1] if error.strip() else 'unknown error'}")
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
    _append_log(run, f"cancelled during stage '{run.stage}'")
    run.save(update_fields=["status", "finished_at", "log"])
    return run


def reap_stale_runs(*, stale_after: timedelta | None = None, workflow: Workflow | None = None) -> list[int]:
    """Fail running runs whose worker has stopped sending heartbeats (killed, OOM, lost
    machine), so the workflow can train again; returns their ids."""
    now = timezone.now()
    stale_after = stale_after or timedelta(seconds=settings.RETRAIN_HEARTBEAT_TIMEOUT)
    # Prediction chunks may wait behind other work in the gpu queue (their messages survive a
    # worker loss), so after training a run is only given up after the training time limit.
    silent_training = Q(stage=TrainingRun.Stage.TRAINING, heartbeat_at__lt=now - stale_after)
    silent_after_training = Q(stage__in=[TrainingRun.Stage.PREDICTING, TrainingRun.Stage.APPLYING],
                              heartbeat_at__lt=now - max(stale_after, timedelta(seconds=settings.RETRAIN_SOFT_TIME_LIMIT)))
    candidates = TrainingRun.objects.filter(silent_training | silent_after_training, status=TrainingRun.Status.RUNNING)
    if workflow is not None:
        candidates = candidates.filter(workflow=workflow)
    reaped = []
    for run in candidates.only("pk", "attempt", "heartbeat_at"):
        if fail_run(run_id=run.pk, attempt=run.attempt,
                    error=f"worker lost: no heartbeat since {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"):
            reaped.append(run.pk)
    return reaped


def _write_priorities(version: ModelVersion) -> int:
    score = Prediction.objects.filter(model_version=version, galaxy_id=OuterRef("galaxy_id")).values("acquisition")[:1]
    return SubjectStatus.objects.filter(workflow_id=version.workflow_id).update(
        priority=Coalesce(Subquery(score, output_field=FloatField()), Value(UNSCORED_PRIORITY)))


@transaction.atomic
def activate_model_version(*, model_version_id: int) -> ModelVersion:
    """Make this version the workflow's one active model and its acquisition scores the queue
    priorities, in one transaction (used for new models, activation and roll-back alike)."""
    version = ModelVersion.objects.select_related("workflow").get(pk=model_version_id)
    workflow = Workflow.objects.select_for_update().get(pk=version.workflow_id)
    if not version.predictions_complete:
        raise CannotActivate(f"model v{version.number} has no complete catalogue predictions", field="model_version")
    if version.tree_hash != workflow.tree_hash:
        raise CannotActivate(f"model v{version.number} predicts another version of the '{workflow.slug}' tree",
                             field="model_version")
    ModelVersion.objects.filter(workflow=workflow, is_active=True).exclude(pk=version.pk).update(is_active=False)
    version.is_active, version.activated_at = True, timezone.now()
    version.save(update_fields=["is_active", "activated_at"])
    _write_priorities(version)
    return version


def maybe_start_automatic_run(*, workflow_id: int) -> TrainingRun | None:
    """Start a run once ``RETRAIN_AFTER_CLASSIFICATIONS`` counted classifications arrived
    since the newest run's snapshot (0 disables). Cheap: it counts only rows newer than that."""
    threshold = settings.RETRAIN_AFTER_CLASSIFICATIONS
    if threshold <= 0:
        return None
    runs = TrainingRun.objects.filter(workflow_id=workflow_id)
    if runs.filter(status__in=TrainingRun.ACTIVE_STATUSES).exists():
        return None
    since = runs.aggregate(last=Max("snapshot_last_classification_id"))["last"] or 0
    new = Classification.objects.filter(workflow_id=workflow_id, counted=True, id__gt=since)[:threshold].count()
    if new < threshold:
        return None
    workflow = Workflow.objects.get(pk=workflow_id)
    try:
        return start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.SCHEDULE)
    except RunAlreadyActive:
        return None


def prepare_demo_model(*, workflow: Workflow, overrides: dict[str, Any] | None = None,
                       seed_fraction: float = 0.6, log=print) -> TrainingRun | None:
    """Train the demo workflow's first model in this process (fast CPU preset) so the site
    opens on a finished run, stored predictions and a model-driven queue. When the workflow
    has too few votes, simulated volunteers first classify ``seed_fraction`` of its galaxies
    (3–8 votes each, far from retirement). Does nothing when a model is already active."""
    from .pipeline import execute_run_inline
    from .simulation import seed_simulated_votes

    if ModelVersion.objects.filter(workflow=workflow, is_active=True).exists():
        log(f"'{workflow.slug}' already has an active model")
        return None
    statuses = SubjectStatus.objects.filter(workflow=workflow, retired_at__isnull=True)
    if statuses.filter(classification_count__gt=0).count() < 2 * settings.RETRAIN_MIN_GALAXIES:
        unvoted = list(statuses.filter(classification_count=0).select_related("galaxy").order_by("random_key"))
        chosen = [s.galaxy for s in unvoted[:max(2 * settings.RETRAIN_MIN_GALAXIES, int(seed_fraction * len(unvoted)))]]
        log(f"simulated volunteers classify {len(chosen)} '{workflow.slug}' galaxies ...")
        stored = seed_simulated_votes(workflow=workflow, galaxies=chosen)
        log(f"  {stored} simulated classifications stored (is_simulated=True)")
    for orphan in TrainingRun.objects.filter(workflow=workflow, status__in=TrainingRun.ACTIVE_STATUSES):
        log(f"cancelling run {orphan.pk} left {orphan.status} by an earlier session")
        cancel_training_run(run_id=orphan.pk)
    run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.DEMO, full_retrain=True,
                             overrides={**settings.RETRAIN_DEMO_OVERRIDES, **(overrides or {})}, dispatch=False)
    log(f"training the first '{workflow.slug}' model (run {run.pk}, simulated volunteers' votes) ...")
    run = execute_run_inline(run_id=run.pk, log=log)
    if run.status == TrainingRun.Status.SUCCEEDED:
        version = run.model_version
        log(f"model v{version.number} active after {run.duration_seconds:.0f} s "
            f"(hold-out RMSE {version.metrics.get('rmse') or float('nan'):.3f})")
    else:
        log(f"demo training run {run.pk} {run.status}: {run.error.strip().splitlines()[-1:] or ''}")
    return run
