"""The heavy steps of a training run, called by the Celery tasks with ids (or in-process for
the demo): freeze the training set, train, score the hold-out, predict the catalogue chunk by
chunk, then activate the model. Every step re-checks the run's status under its row lock
before writing, so redelivered or late messages are harmless.

``classifier.training``/``predict``/``acquisition`` (torch) are imported inside the functions:
the web process never loads torch and CUDA never initialises before a worker forks.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
import traceback
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from classifications.models import Classification, SubjectStatus
from workflows.models import Workflow

from .errors import CannotActivate, NotEnoughTrainingData
from .models import ModelVersion, Prediction, TrainingRun
from .services import Claim, activate_model_version, claim_run, fail_run, record_progress, worker_identity

logger = logging.getLogger(__name__)

SPLIT_COLUMN = "split"
TRAIN, HOLDOUT = "train", "holdout"
ROUND_DIGITS = 5


class RunLost(RuntimeError):
    """The run was cancelled, reaped or taken over while this process worked on it."""


def run_directory(run_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "models" / "runs" / str(run_id)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_train_config(hyperparameters: dict[str, Any]):
    """``{"preset", "overrides"}`` -> ``TrainConfig`` (preset ``fast_cpu`` or ``default``)."""
    from classifier.training import TrainConfig

    preset = hyperparameters.get("preset", "fast_cpu")
    base = TrainConfig.fast_cpu() if preset == "fast_cpu" else TrainConfig()
    return TrainConfig.from_dict({**base.to_dict(), **hyperparameters.get("overrides", {})})


# ---------------------------------------------------------------- training-set snapshot
def build_snapshot(*, workflow: Workflow, holdout_fraction: float) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every galaxy of the workflow with votes: ``id_str``, ``file_loc``, ``split`` and one
    count column per answer of the current tree. The hold-out is the galaxies whose fixed
    uniform ``random_key`` is below ``holdout_fraction``: chosen before any model existed,
    identical for every run (versions are compared on the same galaxies) and never trained on."""
    votes = Classification.objects.filter(workflow=workflow, counted=True)
    last_id = votes.aggregate(last=Max("id"))["last"]
    provenance = {"snapshot_last_classification_id": last_id,
                  "snapshot_classifications": votes.filter(id__lte=last_id or 0).count(),
                  "snapshot_simulated_classifications": votes.filter(id__lte=last_id or 0, is_simulated=True).count()}
    columns = workflow.decision_tree.answer_columns
    rows = (SubjectStatus.objects.filter(workflow=workflow, classification_count__gt=0)
            .order_by("galaxy_id").values_list("galaxy__id_str", "galaxy__image", "vote_counts", "random_key"))
    records = []
    for id_str, image, counts, random_key in rows.iterator(chunk_size=2000):
        if not image:
            continue
        path = default_storage.path(image)
        if not Path(path).is_file():
            continue
        records.append({"id_str": id_str, "file_loc": path,
                        SPLIT_COLUMN: HOLDOUT if random_key < holdout_fraction else TRAIN,
                        **{c: int(counts.get(c, 0)) for c in columns}})
    frame = pd.DataFrame.from_records(records, columns=["id_str", "file_loc", SPLIT_COLUMN, *columns])
    return frame, provenance


def _load_or_take_snapshot(run: TrainingRun) -> pd.DataFrame:
    """The run's frozen training set: written once, reused by a resumed attempt, checksummed."""
    if run.snapshot_file:
        path = Path(settings.MEDIA_ROOT) / run.snapshot_file
        if sha256_of(path) != run.snapshot_sha256:
            raise RuntimeError(f"training-set snapshot {path} does not match its checksum")
        return pd.read_csv(path)
    frame, provenance = build_snapshot(workflow=run.workflow, holdout_fraction=settings.RETRAIN_HOLDOUT_FRACTION)
    n_train = int((frame[SPLIT_COLUMN] == TRAIN).sum())
    if n_train < settings.RETRAIN_MIN_GALAXIES:
        raise NotEnoughTrainingData(f"needs at least {settings.RETRAIN_MIN_GALAXIES} classified galaxies outside "
                                    f"the hold-out, has {n_train}", field="workflow")
    path = run_directory(run.pk) / "training_set.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    updated = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING, attempt=run.attempt).update(
        snapshot_file=str(path.relative_to(settings.MEDIA_ROOT)), snapshot_sha256=sha256_of(path),
        snapshot_taken_at=timezone.now(), snapshot_galaxies=n_train,
        snapshot_holdout_galaxies=len(frame) - n_train, **provenance)
    if not updated:
        raise RunLost(f"run {run.pk} is no longer running")
    return frame


# ---------------------------------------------------------------- training
class ProgressReporter:
    """Training's progress callback: stores epoch/loss and a heartbeat at most every
    ``interval`` seconds (and at every epoch end), and tells training to stop once the run
    is no longer this attempt's (cancelled, reaped, taken over)."""

    def __init__(self, *, run_id: int, attempt: int, history: list[dict[str, Any]], interval: float):
        self.run_id, self.attempt, self.interval = run_id, attempt, interval
        self.history = list(history)
        self.lost = False
        self._last_write = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        epoch_end = event.get("stage") == "epoch_end"
        if epoch_end:
            self.history = [h for h in self.history if h["epoch"] < event["epoch"]]
            self.history.append({"epoch": event["epoch"], "train_loss": event["train_loss"],
                                 "val_loss": event["val_loss"]})
        now = time.monotonic()
        if not epoch_end and now - self._last_write < self.interval:
            return
        self._last_write = now
        self.lost = not record_progress(run_id=self.run_id, attempt=self.attempt, progress=event,
                                        history=self.history if epoch_end else None)

    def should_stop(self) -> bool:
        return self.lost


def _holdout_metrics(checkpoint: Path, holdout: pd.DataFrame, tree, device: str) -> dict[str, Any]:
    """Metrics of the new model on the fixed random hold-out galaxies (never trained on)."""
    from classifier.metrics import evaluate
    from classifier.predict import load_model

    if len(holdout) < 2:
        return {"n_galaxies": len(holdout), "note": "too few classified hold-out galaxies to evaluate"}
    predictor = load_model(checkpoint, device=device)
    concentrations, _fractions, lower, upper = posterior(predictor, list(holdout["file_loc"]))
    counts = holdout[list(tree.answer_columns)].to_numpy(dtype=np.float64)
    return evaluate(concentrations, counts, predictor.schema, lower=lower, upper=upper)


def _train_and_evaluate(claim: Claim) -> tuple[Path, dict[str, Any], dict[str, Any], list[dict[str, Any]], Any]:
    from classifier.training import train

    run = claim.run
    workflow = run.workflow
    if workflow.tree_hash != run.tree_hash:
        raise RuntimeError(f"the '{workflow.slug}' tree changed since run {run.pk} was queued; start a new run")
    config = resolve_train_config(run.hyperparameters)
    TrainingRun.objects.filter(pk=run.pk).update(hyperparameters={**run.hyperparameters, "config": config.to_dict()})
    frame = _load_or_take_snapshot(run)
    reporter = ProgressReporter(run_id=run.pk, attempt=run.attempt, history=run.history if claim.resumed else [],
                                interval=settings.RETRAIN_PROGRESS_INTERVAL)
    init = run.init_model_version
    result = train(frame[frame[SPLIT_COLUMN] == TRAIN].drop(columns=[SPLIT_COLUMN]), images_dir=None,
                   tree=workflow.decision_tree, out_dir=run_directory(run.pk) / "work", config=config,
                   progress=reporter, init_checkpoint=Path(init.checkpoint.path) if init else None,
                   resume=claim.resumed, should_stop=reporter.should_stop)
    if reporter.lost:
        raise RunLost(f"run {run.pk} is no longer running")
    metrics = _holdout_metrics(result.checkpoint_path, frame[frame[SPLIT_COLUMN] == HOLDOUT],
                               workflow.decision_tree, config.device)
    return result.checkpoint_path, metrics, result.metrics, result.history, config


def prediction_chunks(*, workflow_id: int, size: int) -> list[list[int]]:
    """The catalogue as ``[first, last]`` galaxy-id ranges of ``size`` galaxies each."""
    ids = list(SubjectStatus.objects.filter(workflow_id=workflow_id).order_by("galaxy_id")
               .values_list("galaxy_id", flat=True))
    return [[ids[i], ids[min(i + size, len(ids)) - 1]] for i in range(0, len(ids), size)]


def _record_model_version(*, claim: Claim, checkpoint: Path, metrics: dict[str, Any],
                          train_metrics: dict[str, Any], history: list[dict[str, Any]], device: str,
                          dispatch: bool) -> ModelVersion:
    """Store the checkpoint (named by its sha256) and an inactive version, and move the run
    on to prediction — all or nothing, and only if this attempt still owns the run."""
    run = claim.run
    digest = sha256_of(checkpoint)
    with open(checkpoint, "rb") as handle:
        stored_name = default_storage.save(f"models/{run.workflow.slug}/run{run.pk}-{digest[:16]}.pt", File(handle))
    try:
        with transaction.atomic():
            locked = TrainingRun.objects.select_for_update().get(pk=run.pk)
            if locked.status != TrainingRun.Status.RUNNING or locked.attempt != run.attempt:
                raise RunLost(f"run {run.pk} is {locked.status}")
            workflow = Workflow.objects.select_for_update().get(pk=run.workflow_id)
            number = (ModelVersion.objects.filter(workflow=workflow).aggregate(n=Max("number"))["n"] or 0) + 1
            version = ModelVersion.objects.create(
                workflow=workflow, number=number, run=locked, checkpoint=stored_name, checkpoint_sha256=digest,
                checkpoint_bytes=checkpoint.stat().st_size, tree_hash=run.tree_hash,
                answer_columns=list(workflow.decision_tree.answer_columns), metrics=metrics,
                train_metrics=train_metrics)
            locked.stage, locked.trained_at, locked.device = TrainingRun.Stage.PREDICTING, timezone.now(), device
            locked.history = [{k: h.get(k) for k in ("epoch", "train_loss", "val_loss", "seconds")} for h in history]
            locked.prediction_chunks = prediction_chunks(workflow_id=workflow.pk,
                                                         size=settings.RETRAIN_PREDICT_CHUNK_SIZE)
            locked.prediction_chunks_done = []
            locked.heartbeat_at = timezone.now()
            locked.log += f"{timezone.now():%Y-%m-%d %H:%M:%S} trained model v{number}; predicting " \
                          f"{len(locked.prediction_chunks)} chunk(s)\n"
            locked.save()
            if dispatch:
                _dispatch_prediction(run_id=run.pk, n_chunks=len(locked.prediction_chunks))
    except BaseException:
        default_storage.delete(stored_name)
        raise
    shutil.rmtree(run_directory(run.pk) / "work", ignore_errors=True)
    return version


def _dispatch_prediction(*, run_id: int, n_chunks: int) -> None:
    from .tasks import apply_priorities, predict_chunk

    if n_chunks == 0:
        transaction.on_commit(lambda: apply_priorities.delay(run_id))
    for index in range(n_chunks):
        transaction.on_commit(lambda index=index: predict_chunk.delay(run_id, index))


def train_run(*, run_id: int, dispatch: bool = True) -> TrainingRun | None:
    """The training task: claim, snapshot, train, evaluate, record the version. Errors fail
    the run (never the active model); a lost run (cancelled, reaped, taken over) is left as is."""
    claim = claim_run(run_id=run_id, worker=worker_identity())
    if claim is None:
        logger.info("training run %s: nothing to do (already taken up or finished)", run_id)
        return None
    from classifier.training import TrainingCancelled

    try:
        checkpoint, metrics, train_metrics, history, config = _train_and_evaluate(claim)
        _record_model_version(claim=claim, checkpoint=checkpoint, metrics=metrics, train_metrics=train_metrics,
                              history=history, device=str(train_metrics.get("device", config.device)),
                              dispatch=dispatch)
    except (RunLost, TrainingCancelled) as exc:
        logger.info("training run %s stopped: %s", run_id, exc)
    except Exception as exc:  # noqa: BLE001 — any error must end as a failed run, with its traceback
        logger.exception("training run %s failed", run_id)
        message = exc.message if isinstance(exc, NotEnoughTrainingData) else traceback.format_exc()
        fail_run(run_id=run_id, attempt=claim.run.attempt, error=message)
    return TrainingRun.objects.get(pk=run_id)


# ---------------------------------------------------------------- catalogue prediction
def posterior(predictor, paths: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MC-dropout concentrations ``(G, T, A)``, mean fractions and 90% credible intervals.

    The classifier's ``Predictor.predict`` reads the intervals off a 401-point CDF grid,
    which dominates the cost of scoring a catalogue on CPU; a coarser grid (linear
    interpolation between points, ``RETRAIN_INTERVAL_GRID_POINTS``) agrees to ~0.003 and is 4× cheaper."""
    from classifier.data import load_images
    from classifier.predict import credible_intervals, mc_concentrations, mean_fractions

    images = load_images(paths, predictor.preprocessing)
    concentrations = mc_concentrations(predictor.model, images, predictor.preprocessing,
                                       settings.RETRAIN_PREDICT_MC_SAMPLES, predictor.device)
    lower, upper = credible_intervals(concentrations, predictor.schema,
                                      grid_points=settings.RETRAIN_INTERVAL_GRID_POINTS)
    return concentrations, mean_fractions(concentrations, predictor.schema), lower, upper


@lru_cache(maxsize=1)
def _predictor(checkpoint_path: str, sha256: str, device: str):
    from classifier.predict import load_model

    return load_model(checkpoint_path, device=device)


def _prediction_rows(version: ModelVersion, workflow: Workflow, galaxy_ids: list[int], paths: list[str],
                     device: str) -> list[Prediction]:
    from classifier.acquisition import predictive_entropy, tree_bald

    predictor = _predictor(version.checkpoint.path, version.checkpoint_sha256, device)
    concentrations, fractions, lower, upper = posterior(predictor, paths)
    acquisition = tree_bald(concentrations, predictor.schema, n_total=workflow.retirement_count)
    entropy = predictive_entropy(concentrations, predictor.schema)

    def rounded(row: np.ndarray) -> list[float]:
        return [round(float(v), ROUND_DIGITS) for v in row]

    return [Prediction(model_version=version, galaxy_id=gid, fractions=rounded(fractions[i]),
                       lower=rounded(lower[i]), upper=rounded(upper[i]),
                       acquisition=float(acquisition[i]), entropy=float(entropy[i]))
            for i, gid in enumerate(galaxy_ids)]


def _still_predicting(run: TrainingRun, chunk_index: int) -> bool:
    return (run.status == TrainingRun.Status.RUNNING and run.stage == TrainingRun.Stage.PREDICTING
            and chunk_index not in run.prediction_chunks_done)


def predict_chunk(*, run_id: int, chunk_index: int, dispatch: bool = True) -> bool:
    """Predict one chunk of the catalogue with the run's new model and store the rows
    (replacing any from an earlier delivery). The chunk that completes the set moves the run
    to 'applying'. Returns whether this call stored the chunk."""
    run = TrainingRun.objects.select_related("model_version", "workflow").get(pk=run_id)
    if not _still_predicting(run, chunk_index):
        return False
    first, last = run.prediction_chunks[chunk_index]
    galaxy_ids, paths = [], []
    for galaxy_id, image in (SubjectStatus.objects.filter(workflow_id=run.workflow_id, galaxy_id__gte=first, galaxy_id__lte=last)
                             .order_by("galaxy_id").values_list("galaxy_id", "galaxy__image")):
        path = default_storage.path(image) if image else ""
        if path and Path(path).is_file():
            galaxy_ids.append(galaxy_id)
            paths.append(path)
    device = run.hyperparameters.get("config", {}).get("device", "auto")
    rows = _prediction_rows(run.model_version, run.workflow, galaxy_ids, paths, device) if paths else []
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run_id)
        if not _still_predicting(run, chunk_index):
            return False
        Prediction.objects.filter(model_version_id=run.model_version.pk, galaxy_id__gte=first, galaxy_id__lte=last).delete()
        Prediction.objects.bulk_create(rows, batch_size=1000)
        run.prediction_chunks_done = sorted([*run.prediction_chunks_done, chunk_index])
        run.heartbeat_at = timezone.now()
        run.progress = {"stage": "predict", "chunks_done": len(run.prediction_chunks_done),
                        "chunks": len(run.prediction_chunks)}
        complete = len(run.prediction_chunks_done) == len(run.prediction_chunks)
        if complete:
            run.stage = TrainingRun.Stage.APPLYING
            if dispatch:
                from .tasks import apply_priorities

                transaction.on_commit(lambda: apply_priorities.delay(run_id))
        run.save(update_fields=["prediction_chunks_done", "heartbeat_at", "progress", "stage"])
    return True


@transaction.atomic
def apply_priorities(*, run_id: int) -> TrainingRun:
    """Last step: the new version becomes active and its scores the queue priorities, and
    the run succeeds — in one transaction, so the queue never mixes two models."""
    run = TrainingRun.objects.select_for_update(of=("self",)).select_related("model_version").get(pk=run_id)
    if run.status != TrainingRun.Status.RUNNING or run.stage != TrainingRun.Stage.APPLYING:
        return run
    version = run.model_version
    ModelVersion.objects.filter(pk=version.pk).update(predictions_complete=True)
    try:
        with transaction.atomic():
            activate_model_version(model_version_id=version.pk)
    except CannotActivate as exc:
        run.status, run.error = TrainingRun.Status.FAILED, exc.message
    else:
        run.status, run.stage = TrainingRun.Status.SUCCEEDED, TrainingRun.Stage.DONE
    run.finished_at = timezone.now()
    run.log += f"{run.finished_at:%Y-%m-%d %H:%M:%S} {run.status}" + \
        (f": model v{version.number} active, queue priorities updated\n" if not run.error else f": {run.error}\n")
    run.save(update_fields=["status", "stage", "finished_at", "error", "log"])
    return TrainingRun.objects.select_related("model_version").get(pk=run_id)


def execute_run_inline(*, run_id: int, log: Callable[[str], None] = print) -> TrainingRun:
    """Train, predict every chunk and apply, all in this process (the demo's first model)."""
    run = train_run(run_id=run_id, dispatch=False)
    if run is None or run.status != TrainingRun.Status.RUNNING:
        return TrainingRun.objects.get(pk=run_id)
    for index in range(len(run.prediction_chunks)):
        predict_chunk(run_id=run_id, chunk_index=index, dispatch=False)
        log(f"  predicted chunk {index + 1}/{len(run.prediction_chunks)}")
    return apply_priorities(run_id=run_id)
