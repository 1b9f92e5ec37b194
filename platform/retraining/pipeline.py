"""The heavy steps of a training run: freeze the training set, train, score the hold-out,
predict the catalogue chunk by chunk, then apply the model. Each step takes a run id,
computes, records its result through ``runs`` (which re-checks the run's status under its row
lock, so redelivered or late messages are harmless) and returns what comes next; the Celery
tasks chain the steps, :func:`execute_run_inline` loops over them in one process.

``classifier.training``/``predict``/``acquisition`` (torch) are imported inside the functions:
the web process never loads torch and CUDA never initialises before a worker forks.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, connections, transaction
from django.db.models import Max, Q

from classifications.models import Classification, SubjectStatus
from core.storage import local_copy, read_bytes, read_many, sha256_of_bytes
from galaxies.models import Galaxy
from workflows.models import Workflow

from . import gate, queue, runs
from .errors import NotEnoughTrainingData
from .models import GalaxyEmbedding, ModelVersion, Prediction, TrainingRun
from .services import prune_head_predictions
from .vote_sources import expert_votes

logger = logging.getLogger(__name__)

SPLIT_COLUMN = "split"
TRAIN, HOLDOUT = "train", "holdout"
ROUND_DIGITS = 5


def run_directory(run_id: int) -> Path:
    """This node's scratch space for a run (never shared; a run taken over on another node
    restarts its epochs there)."""
    return Path(settings.STORAGE_CACHE_DIR) / "runs" / str(run_id)


def _read_images(names: list[str]) -> list:
    """The stored images as ``EncodedImage`` (None where the file is missing), read through
    the storage API: no node assumes it shares a disk with the one that stored them."""
    from classifier.encoded import EncodedImage

    def read(name: str) -> EncodedImage | None:
        try:
            return EncodedImage(read_bytes(name), name)
        except FileNotFoundError:
            return None

    return read_many(names, read=read)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- training-set snapshot
def vote_provenance(workflow: Workflow) -> dict[str, Any]:
    """The newest counted classification and how many (and how many simulated) there are up to it."""
    votes = Classification.objects.filter(workflow=workflow, counted=True)
    last_id = votes.aggregate(last=Max("id"))["last"]
    return {"snapshot_last_classification_id": last_id,
            "snapshot_classifications": votes.filter(id__lte=last_id or 0).count(),
            "snapshot_simulated_classifications": votes.filter(id__lte=last_id or 0, is_simulated=True).count()}


def build_snapshot(*, workflow: Workflow, holdout_fraction: float,
                   expert_weight: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every galaxy of the workflow with votes: ``id_str``, ``file_loc``, ``split`` and one
    count column per answer of the current tree. The hold-out is the galaxies whose fixed
    uniform ``random_key`` is below ``holdout_fraction``: chosen before any model existed,
    identical for every run (versions are compared on the same galaxies) and never trained on.
    With ``expert_weight`` > 0 the training galaxies' counts include their expert votes
    (``vote_sources``; expert-labelled galaxies without volunteer votes join the training set)."""
    provenance = vote_provenance(workflow)
    columns = workflow.decision_tree.answer_columns
    extra = expert_votes(workflow=workflow, weight=expert_weight)
    rows = (SubjectStatus.objects.filter(Q(classification_count__gt=0) | Q(galaxy_id__in=list(extra)),
                                         workflow=workflow)
            .order_by("galaxy_id").values_list("galaxy_id", "galaxy__id_str", "galaxy__image", "vote_counts",
                                               "random_key"))
    records = []
    for galaxy_id, id_str, image, counts, random_key in rows.iterator(chunk_size=2000):
        if not image:
            continue
        if not default_storage.exists(image):
            continue
        held = random_key < holdout_fraction
        added = {} if held else extra.get(galaxy_id, {})
        row = {c: int(counts.get(c, 0)) + added.get(c, 0) for c in columns}
        if not any(row.values()):
            continue
        records.append({"id_str": id_str, "file_loc": image, SPLIT_COLUMN: HOLDOUT if held else TRAIN, **row})
    frame = pd.DataFrame.from_records(records, columns=["id_str", "file_loc", SPLIT_COLUMN, *columns])
    return frame, provenance


def _load_or_take_snapshot(run: TrainingRun) -> pd.DataFrame:
    """The run's frozen training set: written once, reused by a resumed attempt, checksummed."""
    if run.snapshot_file:
        data = read_bytes(run.snapshot_file)
        if sha256_of_bytes(data) != run.snapshot_sha256:
            raise RuntimeError(f"training-set snapshot {run.snapshot_file} does not match its checksum")
        return pd.read_csv(io.BytesIO(data))
    frame, provenance = build_snapshot(workflow=run.workflow, holdout_fraction=settings.RETRAIN_HOLDOUT_FRACTION,
                                       expert_weight=run.expert_weight)
    n_train = int((frame[SPLIT_COLUMN] == TRAIN).sum())
    if n_train < settings.RETRAIN_MIN_GALAXIES:
        raise NotEnoughTrainingData(f"needs at least {settings.RETRAIN_MIN_GALAXIES} classified galaxies outside "
                                    f"the hold-out, has {n_train}", field="workflow")
    data = frame.to_csv(index=False).encode()
    name = default_storage.save(f"models/runs/{run.pk}/training_set.csv", ContentFile(data))
    runs.record_snapshot(run_id=run.pk, attempt=run.attempt, snapshot_file=name,
                         snapshot_sha256=sha256_of_bytes(data), snapshot_galaxies=n_train,
                         snapshot_holdout_galaxies=len(frame) - n_train, **provenance)
    return frame


@contextmanager
def heartbeat(*, run_id: int, attempt: int | None) -> Iterator[None]:
    """Beat for the run from a thread while a step computes, every ``RETRAIN_HEARTBEAT_INTERVAL``
    s: a slow snapshot, a long epoch or a big chunk then never looks like a lost worker, so the
    reaper's ``RETRAIN_HEARTBEAT_TIMEOUT`` can be short. Inside a transaction (tests) another
    connection would wait for this one's row locks: no thread then."""
    if connection.in_atomic_block:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.RETRAIN_HEARTBEAT_INTERVAL):
                try:
                    runs.record_heartbeat(run_id=run_id, attempt=attempt)
                except Exception:  # noqa: BLE001 — a database blip must not end the step; the next beat retries
                    logger.warning("heartbeat of run %s failed", run_id, exc_info=True)
                    connections.close_all()
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=beat, name=f"run-{run_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


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
        self.lost = not runs.record_progress(run_id=self.run_id, attempt=self.attempt, progress=event,
                                        history=self.history if epoch_end else None)

    def should_stop(self) -> bool:
        return self.lost


def _holdout_metrics(checkpoint: Path, holdout: pd.DataFrame, tree, device: str) -> dict[str, Any]:
    """Metrics of the new model on the fixed random hold-out galaxies (never trained on)."""
    from classifier.metrics import evaluate
    from classifier.predict import load_model

    if len(holdout) < 2:
        return {"n_galaxies": len(holdout), "note": "too few classified hold-out galaxies to evaluate"}
    predictions = _posterior(load_model(checkpoint, device=device), _snapshot_images(holdout))
    counts = holdout[list(tree.answer_columns)].to_numpy(dtype=np.float64)
    return evaluate(predictions.concentrations, counts, predictions.schema, lower=predictions.lower,
                    upper=predictions.upper)


def _resume_state_name(run_id: int) -> str:
    return f"models/runs/{run_id}/last.pt"


def _push_resume_state(run_id: int, work: Path) -> None:
    """After each epoch, training's own resume file goes to the storage, so a worker on
    another node that takes the run over continues from this epoch (delete, then save: the
    storage never overwrites; a crash in between only means starting the epochs again)."""
    from classifier.training import LAST_CHECKPOINT

    name = _resume_state_name(run_id)
    default_storage.delete(name)
    with open(work / LAST_CHECKPOINT, "rb") as handle:
        default_storage.save(name, File(handle))


def _fetch_resume_state(run_id: int, work: Path) -> None:
    from classifier.training import LAST_CHECKPOINT

    target, name = work / LAST_CHECKPOINT, _resume_state_name(run_id)
    if target.is_file() or not default_storage.exists(name):
        return
    work.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".download")
    partial.write_bytes(read_bytes(name))
    partial.replace(target)


def _snapshot_images(frame: pd.DataFrame) -> list:
    images = _read_images(list(frame["file_loc"]))
    if missing := [name for name, image in zip(frame["file_loc"], images, strict=True) if image is None]:
        raise FileNotFoundError(f"{len(missing)} image(s) of the training-set snapshot are gone, e.g. {missing[0]}")
    return images


def _train_and_evaluate(claim: runs.Claim) -> tuple[Path, dict[str, Any], dict[str, Any], list[dict[str, Any]], Any]:
    from classifier.encoded import encoded_catalog
    from classifier.schema import Schema
    from classifier.training import TrainConfig, train

    run = claim.run
    workflow = run.workflow
    if workflow.tree_hash != run.tree_hash:
        raise RuntimeError(f"the '{workflow.slug}' tree changed since run {run.pk} was queued; start a new run")
    config = TrainConfig.preset(run.hyperparameters.get("preset", "default"), **run.hyperparameters.get("overrides", {}))
    runs.record_config(run_id=run.pk, attempt=run.attempt, config=config.to_dict())
    frame = _load_or_take_snapshot(run)
    reporter = ProgressReporter(run_id=run.pk, attempt=run.attempt, history=run.history if claim.resumed else [],
                                interval=settings.RETRAIN_PROGRESS_INTERVAL)
    init = run.init_model_version
    work = run_directory(run.pk) / "work"
    if claim.resumed:
        _fetch_resume_state(run.pk, work)

    def progress(event: dict[str, Any]) -> None:
        reporter(event)
        if event.get("stage") == "epoch_end" and not reporter.lost:
            _push_resume_state(run.pk, work)

    training_set = frame[frame[SPLIT_COLUMN] == TRAIN].drop(columns=[SPLIT_COLUMN])
    catalog = encoded_catalog(training_set, _snapshot_images(training_set), Schema.from_tree(workflow.decision_tree))
    result = train(catalog, images_dir=None,
                   tree=workflow.decision_tree, out_dir=work, config=config, progress=progress,
                   init_checkpoint=local_copy(init.checkpoint.name, sha256=init.checkpoint_sha256) if init else None,
                   resume=claim.resumed, should_stop=reporter.should_stop)
    if reporter.lost:
        raise runs.RunLost(f"run {run.pk} is no longer running")
    metrics = _holdout_metrics(result.checkpoint_path, frame[frame[SPLIT_COLUMN] == HOLDOUT],
                               workflow.decision_tree, config.device)
    return result.checkpoint_path, metrics, result.metrics, result.history, config


def prediction_chunks(*, workflow_id: int, size: int) -> list[list[int]]:
    """The catalogue as ``[first, last]`` galaxy-id ranges of ``size`` galaxies each."""
    ids = list(SubjectStatus.objects.filter(workflow_id=workflow_id).order_by("galaxy_id")
               .values_list("galaxy_id", flat=True))
    return [[ids[i], ids[min(i + size, len(ids)) - 1]] for i in range(0, len(ids), size)]


def _store_checkpoint(run: TrainingRun, checkpoint: Path) -> tuple[str, str]:
    """Save the checkpoint in the storage under models/, named by its sha256; returns (name, sha256)."""
    digest = sha256_of(checkpoint)
    with open(checkpoint, "rb") as handle:
        return default_storage.save(f"models/{run.workflow.slug}/run{run.pk}-{digest[:16]}.pt", File(handle)), digest


def train_run(*, run_id: int) -> list[int] | None:
    """Step 1: claim, snapshot, train, evaluate, record the version. Returns the indices of
    the catalogue chunks to predict next (empty: apply at once), or None when the run does not
    go on: errors fail the run (never the active model); a lost run (cancelled, reaped, taken
    over) is left as is."""
    claim = runs.claim_run(run_id=run_id, worker=runs.worker_identity())
    if claim is None:
        logger.info("training run %s: nothing to do (already taken up or finished)", run_id)
        return None
    from classifier.training import TrainingCancelled

    try:
        with heartbeat(run_id=run_id, attempt=claim.run.attempt):
            checkpoint, metrics, train_metrics, history, config = _train_and_evaluate(claim)
        chunks = prediction_chunks(workflow_id=claim.run.workflow_id, size=settings.RETRAIN_PREDICT_CHUNK_SIZE)
        stored_name, digest = _store_checkpoint(claim.run, checkpoint)
        try:
            runs.record_model_version(
                run_id=run_id, attempt=claim.run.attempt, checkpoint_name=stored_name, checkpoint_sha256=digest,
                checkpoint_bytes=checkpoint.stat().st_size, metrics=metrics, train_metrics=train_metrics,
                history=history, device=str(train_metrics.get("device", config.device)), chunks=chunks)
        except BaseException:
            default_storage.delete(stored_name)
            raise
        shutil.rmtree(run_directory(run_id) / "work", ignore_errors=True)
        default_storage.delete(_resume_state_name(run_id))
    except (runs.RunLost, TrainingCancelled) as exc:
        logger.info("training run %s stopped: %s", run_id, exc)
        return None
    except Exception as exc:  # noqa: BLE001 — any error must end as a failed run, with its traceback
        logger.exception("training run %s failed", run_id)
        message = exc.message if isinstance(exc, NotEnoughTrainingData) else traceback.format_exc()
        runs.fail_run(run_id=run_id, attempt=claim.run.attempt, error=message)
        return None
    return list(range(len(chunks)))


# ---------------------------------------------------------------- catalogue prediction
def _posterior(predictor, images: list):
    """MC-dropout posterior of the images, with intervals read off a coarse CDF grid
    (``RETRAIN_INTERVAL_GRID_POINTS``): scoring a catalogue on CPU is 4x cheaper than at the
    classifier's default and the interval ends agree to ~0.003."""
    from classifier.encoded import predict_encoded

    return predict_encoded(predictor, images, n_samples=settings.RETRAIN_PREDICT_MC_SAMPLES,
                           grid_points=settings.RETRAIN_INTERVAL_GRID_POINTS)


@lru_cache(maxsize=1)
def _predictor(checkpoint_path: str, sha256: str, device: str):
    from classifier.predict import load_model

    return load_model(checkpoint_path, device=device)


def _rounded(values: np.ndarray) -> list[list[float]]:
    """Rows of ``(G, A)`` as lists rounded to ``ROUND_DIGITS`` (one numpy call for the lot:
    per-value ``round`` took seconds for a 100k-galaxy refresh)."""
    return np.round(np.asarray(values, dtype=np.float64), ROUND_DIGITS).tolist()


def _predictions(version: ModelVersion, galaxy_ids, fractions: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                 acquisition: np.ndarray, entropy: np.ndarray, samples: list[bytes],
                 priorities: np.ndarray) -> list[Prediction]:
    return [Prediction(model_version=version, galaxy_id=int(gid), fractions=f, lower=lo, upper=up,
                       acquisition=float(a), priority=float(p), entropy=float(e), sample_fractions=sample)
            for gid, f, lo, up, a, p, e, sample in zip(galaxy_ids, _rounded(fractions), _rounded(lower),
                                                       _rounded(upper), acquisition, priorities, entropy, samples,
                                                       strict=True)]


def _prediction_rows(version: ModelVersion, workflow: Workflow, galaxy_ids: list[int], images: list,
                     device: str) -> tuple[list[Prediction], list[GalaxyEmbedding]]:
    """The chunk's predictions and the encoder's pooled features of each galaxy, from one
    encoder pass (the head tier retrains on these without touching images)."""
    from classifier.acquisition import predictive_entropy, tree_bald
    from classifier.live_head import embedding_bytes, predict_with_features
    from classifier.samples import sample_fraction_bytes

    checkpoint = local_copy(version.checkpoint.name, sha256=version.checkpoint_sha256)
    predictor = _predictor(str(checkpoint), version.checkpoint_sha256, device)
    predictions, features = predict_with_features(predictor, images, n_samples=settings.RETRAIN_PREDICT_MC_SAMPLES,
                                                  grid_points=settings.RETRAIN_INTERVAL_GRID_POINTS)
    acquisition = tree_bald(predictions.concentrations, predictor.schema, n_total=workflow.retirement_count)
    entropy = predictive_entropy(predictions.concentrations, predictor.schema)
    # The BALD priority until the whole catalogue is predicted: store_queue_priorities then applies
    # the queue's rule, which needs every galaxy's embedding.
    rows = _predictions(version, galaxy_ids, predictions.fractions, predictions.lower, predictions.upper,
                        acquisition, entropy, sample_fraction_bytes(predictions.concentrations, predictor.schema),
                        priorities=acquisition)
    embeddings = [GalaxyEmbedding(model_version=version, galaxy_id=gid, vector=vector)
                  for gid, vector in zip(galaxy_ids, embedding_bytes(features))]
    return rows, embeddings


def _chunk_images(workflow_id: int, first: int, last: int) -> tuple[list[int], list]:
    """Galaxy ids and images of one catalogue chunk (galaxies whose image cannot be read are skipped)."""
    stored = [(galaxy_id, image) for galaxy_id, image in
              SubjectStatus.objects.filter(workflow_id=workflow_id, galaxy_id__gte=first, galaxy_id__lte=last)
              .order_by("galaxy_id").values_list("galaxy_id", "galaxy__image") if image]
    read = _read_images([image for _, image in stored])
    galaxy_ids = [galaxy_id for (galaxy_id, _), image in zip(stored, read, strict=True) if image is not None]
    return galaxy_ids, [image for image in read if image is not None]


def predict_chunk(*, run_id: int, chunk_index: int) -> bool:
    """Step 2 (once per chunk): predict one chunk of the catalogue with the run's new model
    and record it. Returns whether this chunk completed the set (apply next)."""
    run = TrainingRun.objects.select_related("model_version", "workflow").get(pk=run_id)
    if not runs.still_predicting(run, chunk_index):
        return False
    first, last = run.prediction_chunks[chunk_index]
    device = run.hyperparameters.get("config", {}).get("device", "auto")
    with heartbeat(run_id=run_id, attempt=None):
        galaxy_ids, images = _chunk_images(run.workflow_id, first, last)
        rows, embeddings = (_prediction_rows(run.model_version, run.workflow, galaxy_ids, images, device)
                            if images else ([], []))
    return bool(runs.record_chunk(run_id=run_id, chunk_index=chunk_index, rows=rows, embeddings=embeddings))


def install_pretrained_model(*, workflow: Workflow, checkpoint: Path, metrics: dict[str, Any],
                             train_metrics: dict[str, Any], device: str = "cpu") -> ModelVersion:
    """A checkpoint trained elsewhere becomes the workflow's active model: stored under
    MEDIA_ROOT/models/ by its sha256, the whole catalogue predicted in this process, then
    activated (its scores the queue priorities). Loading it never unpickles code."""
    from classifier.checkpoint import load_checkpoint

    from . import services

    tree_hash = load_checkpoint(checkpoint).schema.version_hash
    digest = sha256_of(checkpoint)
    with open(checkpoint, "rb") as handle:
        stored = default_storage.save(f"models/{workflow.slug}/pretrained-{digest[:16]}.pt", File(handle))
    try:
        version = services.register_pretrained_version(
            workflow=workflow, checkpoint_name=stored, checkpoint_sha256=digest,
            checkpoint_bytes=checkpoint.stat().st_size, tree_hash=tree_hash, metrics=metrics,
            train_metrics=train_metrics)
    except BaseException:
        default_storage.delete(stored)
        raise
    rows: list[Prediction] = []
    embeddings: list[GalaxyEmbedding] = []
    for first, last in prediction_chunks(workflow_id=workflow.pk, size=settings.RETRAIN_PREDICT_CHUNK_SIZE):
        galaxy_ids, images = _chunk_images(workflow.pk, first, last)
        if images:
            chunk_rows, chunk_embeddings = _prediction_rows(version, workflow, galaxy_ids, images, device)
            rows += chunk_rows
            embeddings += chunk_embeddings
    services.complete_predictions(model_version_id=version.pk, rows=rows, embeddings=embeddings)
    store_queue_priorities(version, seed=version.pk)
    return services.activate_model_version(model_version_id=version.pk)


def store_queue_priorities(version: ModelVersion, *, seed: int) -> None:
    """An encoder version's queue priorities under the queue's rule (``retraining.queue``), once
    its whole catalogue and its embeddings are stored and before it can become active.
    Deterministic for a seed and the same votes, so a redelivered apply step writes the same."""
    from . import services

    rows = list(Prediction.objects.filter(model_version=version).order_by("galaxy_id")
                .values_list("pk", "galaxy_id", "acquisition", "priority"))
    embedded_ids, embeddings = load_embeddings(model_version_id=version.pk)
    keys = queue.queue_keys(workflow_id=version.workflow_id,
                            galaxy_ids=np.asarray([row[1] for row in rows], dtype=np.int64),
                            acquisition=np.asarray([row[2] for row in rows], dtype=np.float64),
                            embedded_ids=embedded_ids, embeddings=embeddings, seed=seed)
    changed = {pk: float(value) for (pk, _, _, old), value in zip(rows, keys.priorities, strict=True)
               if old is None or old != float(value)}
    services.record_queue_priorities(model_version_id=version.pk, priorities=changed, rule=keys.rule)


# ---------------------------------------------------------------- the champion/challenger gate
def version_concentrations(version: ModelVersion, galaxy_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Any version's posterior samples ``(G, T, A)`` for those of ``galaxy_ids`` it can score
    (returned, sorted): a head from its encoder's stored embeddings, an encoder from the images
    (MC dropout with a fixed seed, so the figure is reproducible)."""
    import torch

    wanted = np.unique(np.asarray(galaxy_ids, dtype=np.int64))
    nothing = np.zeros((0, 1, len(version.answer_columns)), dtype=np.float32)
    if version.kind == TrainingRun.Kind.HEAD:
        from classifier.live_head import head_from_bytes

        ids, embeddings = load_embeddings(model_version_id=version.encoder_id, galaxy_ids=wanted)
        if len(ids) == 0:  # a hold-out without embedded galaxies (or none at all): nothing to score
            return np.asarray(ids, dtype=np.int64), nothing
        head = head_from_bytes(read_bytes(version.checkpoint.name))
        return ids, head.sample_concentrations(embeddings)
    stored = list(Galaxy.objects.filter(pk__in=wanted.tolist()).exclude(image="").order_by("pk")
                  .values_list("pk", "image"))
    images = _read_images([image for _, image in stored])
    ids = np.asarray([pk for (pk, _), image in zip(stored, images, strict=True) if image is not None], dtype=np.int64)
    images = [image for image in images if image is not None]
    if not images:
        return ids, nothing
    checkpoint = local_copy(version.checkpoint.name, sha256=version.checkpoint_sha256)
    torch.manual_seed(0)
    return ids, _posterior(_predictor(str(checkpoint), version.checkpoint_sha256, "cpu"), images).concentrations


def gate_figures(*, champion: ModelVersion | None, galaxy_ids: np.ndarray, counts: np.ndarray,
                 challenger: tuple[np.ndarray, np.ndarray], schema) -> gate.GateFigures:
    """Mean hold-out loss (per-galaxy mixture NLL of the votes, ``classifier.heads.mixture_nll``)
    of the challenger and the champion on the galaxies both score, with the same ``counts``
    (rows follow ``galaxy_ids``). ``challenger`` is its ``(ids, concentrations)``."""
    from classifier.heads import mixture_nll

    if champion is None:
        return gate.GateFigures(champion_id=None)
    order = np.argsort(galaxy_ids)
    galaxy_ids, counts = np.asarray(galaxy_ids)[order], np.asarray(counts)[order]
    champion_ids, champion_conc = version_concentrations(champion, galaxy_ids)
    challenger_ids, challenger_conc = challenger
    common = np.intersect1d(np.intersect1d(champion_ids, challenger_ids), galaxy_ids)
    if len(common) < gate.MIN_GALAXIES:
        return gate.GateFigures(champion_id=champion.pk, n_galaxies=len(common))
    votes = counts[np.searchsorted(galaxy_ids, common)]

    def loss(ids: np.ndarray, concentrations: np.ndarray) -> float:
        rows = np.searchsorted(ids, common)
        return round(float(mixture_nll(concentrations[rows], votes, schema).mean()), ROUND_DIGITS)

    return gate.GateFigures(champion_id=champion.pk, n_galaxies=len(common),
                            challenger_loss=loss(np.asarray(challenger_ids), challenger_conc),
                            champion_loss=loss(champion_ids, champion_conc))


def _encoder_gate_figures(run: TrainingRun) -> gate.GateFigures:
    """Both models on the run's frozen hold-out (the snapshot's galaxies and vote counts)."""
    from classifier.schema import Schema

    champion = gate.champion_for(run)
    if champion is None:
        return gate.GateFigures(champion_id=None)
    frame = _load_or_take_snapshot(run)
    held = frame[frame[SPLIT_COLUMN] == HOLDOUT]
    pks = dict(Galaxy.objects.filter(id_str__in=list(held["id_str"])).values_list("id_str", "pk"))
    held = held[held["id_str"].isin(pks)]
    galaxy_ids = held["id_str"].map(pks).to_numpy(dtype=np.int64)
    counts = held[list(run.workflow.decision_tree.answer_columns)].to_numpy(dtype=np.float64)
    return gate_figures(champion=champion, galaxy_ids=galaxy_ids, counts=counts,
                        challenger=version_concentrations(run.model_version, galaxy_ids),
                        schema=Schema(run.workflow.decision_tree))


GATE_ATTEMPTS = 3


def apply_priorities(*, run_id: int) -> TrainingRun:
    """Step 3: the gate compares the new version with the champion; if it is not worse it
    becomes active and its scores the queue priorities, else it waits for review; the run
    succeeds either way. Computed again if another version became active meanwhile. First the
    version's queue priorities are stored (``store_queue_priorities``), whichever way it goes."""
    run = TrainingRun.objects.select_related("model_version").get(pk=run_id)
    if run.status == TrainingRun.Status.RUNNING and run.stage == TrainingRun.Stage.APPLYING:
        try:
            store_queue_priorities(run.model_version, seed=run.pk)
        except Exception:  # noqa: BLE001 — the run fails with the traceback; the active model is untouched
            logger.exception("training run %s: the queue priorities failed", run_id)
            runs.fail_run(run_id=run_id, attempt=None, error=traceback.format_exc())
            return TrainingRun.objects.get(pk=run_id)
    for _ in range(GATE_ATTEMPTS):
        run = TrainingRun.objects.select_related("model_version", "workflow", "init_model_version").get(pk=run_id)
        if run.status != TrainingRun.Status.RUNNING or run.stage != TrainingRun.Stage.APPLYING:
            return run
        try:
            return runs.finish_run(run_id=run_id, figures=_encoder_gate_figures(run))
        except runs.ChampionChanged as exc:
            logger.info("%s; comparing again", exc)
        except Exception:  # noqa: BLE001 — the run fails with the traceback; the active model is untouched
            logger.exception("training run %s: the gate failed", run_id)
            runs.fail_run(run_id=run_id, attempt=None, error=traceback.format_exc())
            return TrainingRun.objects.get(pk=run_id)
    runs.fail_run(run_id=run_id, attempt=None,
                  error=f"the active model changed {GATE_ATTEMPTS} times while the gate compared; run again")
    return TrainingRun.objects.get(pk=run_id)


def execute_run_inline(*, run_id: int, log: Callable[[str], None] = print) -> TrainingRun:
    """The same steps the tasks chain, in this process (the demo's first model, tests, benchmarks)."""
    chunks = train_run(run_id=run_id)
    if chunks is None:
        return TrainingRun.objects.get(pk=run_id)
    for done, index in enumerate(chunks, start=1):
        predict_chunk(run_id=run_id, chunk_index=index)
        log(f"  predicted chunk {done}/{len(chunks)}")
    return apply_priorities(run_id=run_id)


# ---------------------------------------------------------------- head refresh (the live queue)
def load_embeddings(*, model_version_id: int, galaxy_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Galaxy ids ``(G,)`` and their stored embeddings ``(G, D)`` float32 of one encoder version
    (all of its galaxies, or those of ``galaxy_ids`` it has)."""
    from classifier.live_head import EMBEDDING_DTYPE, embeddings_from_bytes

    stored = GalaxyEmbedding.objects.filter(model_version_id=model_version_id)
    if galaxy_ids is not None:
        stored = stored.filter(galaxy_id__in=[int(i) for i in galaxy_ids])
    rows = list(stored.order_by("galaxy_id").values_list("galaxy_id", "vector"))
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids, vectors = zip(*rows)
    dim = len(vectors[0]) // EMBEDDING_DTYPE.itemsize
    return np.asarray(ids, dtype=np.int64), embeddings_from_bytes(vectors, dim)


def head_training_set(*, workflow: Workflow,
                      expert_weight: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Voted galaxies' ids and vote counts ``(N, A)`` in tree order (outside the hold-out, plus
    their expert votes at ``expert_weight``, as in :func:`build_snapshot`), whether each is in
    the fixed hold-out, and the unretired galaxies' ids (the ones to rescore)."""
    tree = workflow.decision_tree
    holdout_fraction = settings.RETRAIN_HOLDOUT_FRACTION
    extra = expert_votes(workflow=workflow, weight=expert_weight)
    statuses = SubjectStatus.objects.filter(workflow=workflow)
    voted = []
    for galaxy_id, counts, random_key in (statuses.filter(Q(classification_count__gt=0) | Q(galaxy_id__in=list(extra)))
                                          .order_by("galaxy_id").values_list("galaxy_id", "vote_counts", "random_key")):
        held = random_key < holdout_fraction
        added = {} if held else extra.get(galaxy_id, {})
        vector = tree.counts_vector({c: counts.get(c, 0) + added.get(c, 0) for c in {*counts, *added}})
        if vector.any():
            voted.append((galaxy_id, vector, held))
    ids = np.asarray([row[0] for row in voted], dtype=np.int64)
    counts_matrix = np.stack([row[1] for row in voted]) if voted else np.zeros((0, tree.n_answers))
    holdout = np.asarray([row[2] for row in voted], dtype=bool)
    unretired = np.asarray(statuses.filter(retired_at__isnull=True).order_by("galaxy_id")
                           .values_list("galaxy_id", flat=True), dtype=np.int64)
    return ids, counts_matrix, holdout, unretired


def _rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in the sorted ``ids`` of the ``wanted`` ids that are present."""
    positions = np.searchsorted(ids, wanted)
    positions = np.clip(positions, 0, max(len(ids) - 1, 0))
    return positions[(len(ids) > 0) & (ids[positions] == wanted)] if len(ids) else positions[:0]


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    timings[step] = time.perf_counter() - started


def _heartbeat(run: TrainingRun, stage: str, **progress: Any) -> None:
    if not runs.record_progress(run_id=run.pk, attempt=run.attempt, progress={"stage": stage, **progress}):
        raise runs.RunLost(f"run {run.pk} is no longer running")


def refresh_head(*, run_id: int, timings: dict[str, float] | None = None) -> TrainingRun | None:
    """A head run, whole: claim; load the active encoder's stored embeddings and the current
    tallies; train a Bayesian head (a deep ensemble by default) on the voted galaxies outside
    the hold-out; score every unretired galaxy (tree BALD, entropy, fractions, 90% intervals);
    order them by the queue's rule (``queue.queue_keys``: the budget-aware start, BALD or power BALD);
    then record the head version, its predictions, activate it and swap the priorities in ONE
    transaction. ``timings`` (seconds per step) is filled in for the benchmark."""
    claim = runs.claim_run(run_id=run_id, worker=runs.worker_identity())
    if claim is None:
        logger.info("head run %s: nothing to do (already taken up or finished)", run_id)
        return None
    run, timings = claim.run, timings if timings is not None else {}
    try:
        with heartbeat(run_id=run_id, attempt=run.attempt):
            _train_and_apply_head(run, timings)
    except runs.RunLost as exc:
        logger.info("head run %s stopped: %s", run_id, exc)
        return None
    except Exception as exc:  # noqa: BLE001 — any error must end as a failed run, with its traceback
        logger.exception("head run %s failed", run_id)
        message = exc.message if isinstance(exc, NotEnoughTrainingData) else traceback.format_exc()
        runs.fail_run(run_id=run_id, attempt=run.attempt, error=message)
        return None
    started = time.perf_counter()
    prune_head_predictions(workflow_id=run.workflow_id, keep=settings.HEAD_REFRESH_KEEP_VERSIONS)
    timings["prune_old_heads"] = time.perf_counter() - started
    return TrainingRun.objects.get(pk=run_id)


def _train_and_apply_head(run: TrainingRun, timings: dict[str, float]) -> None:
    from classifier.heads import HeadConfig, train_head
    from classifier.live_head import BaldPlan, head_to_bytes, score_embeddings
    from classifier.metrics import evaluate
    from classifier.samples import sample_fraction_bytes
    from classifier.schema import Schema

    workflow = run.workflow
    if workflow.tree_hash != run.tree_hash:
        raise RuntimeError(f"the '{workflow.slug}' tree changed since run {run.pk} was queued; start a new run")
    config = HeadConfig(**run.hyperparameters.get("head", {}))
    runs.record_config(run_id=run.pk, attempt=run.attempt, config=config.to_dict())

    clock = time.perf_counter()
    provenance = vote_provenance(workflow)
    voted_ids, counts, holdout, unretired = head_training_set(workflow=workflow, expert_weight=run.expert_weight)
    embedded_ids, embeddings = load_embeddings(model_version_id=run.init_model_version_id)
    timings["load"] = time.perf_counter() - clock

    has_embedding = np.isin(voted_ids, embedded_ids)
    train, held = has_embedding & ~holdout, has_embedding & holdout
    if train.sum() < settings.RETRAIN_MIN_GALAXIES:
        raise NotEnoughTrainingData(f"needs at least {settings.RETRAIN_MIN_GALAXIES} classified galaxies with "
                                    f"embeddings outside the hold-out, has {int(train.sum())}", field="workflow")
    runs.record_snapshot(run_id=run.pk, attempt=run.attempt, snapshot_galaxies=int(train.sum()),
                         snapshot_holdout_galaxies=int(held.sum()), **provenance)
    _heartbeat(run, "train_head", galaxies=int(train.sum()))

    clock = time.perf_counter()
    schema = Schema(workflow.decision_tree)
    head = train_head(embeddings[_rows_of(embedded_ids, voted_ids[train])], counts[train], schema, config)
    timings["train"] = time.perf_counter() - clock
    _heartbeat(run, "score", galaxies=len(unretired))

    clock = time.perf_counter()
    scored_rows = _rows_of(embedded_ids, unretired)
    plan = BaldPlan(precise_top=settings.HEAD_REFRESH_PRECISE_TOP)
    threads = settings.HEAD_REFRESH_THREADS
    scores = score_embeddings(head, embeddings[scored_rows], n_total=workflow.retirement_count, plan=plan,
                              workers=threads)
    metrics: dict[str, Any] = {"n_galaxies": int(held.sum()), "note": "too few classified hold-out galaxies"}
    held_concentrations = np.zeros((0, 1, schema.n_answers))
    if held.sum() >= 2:
        held_scores = score_embeddings(head, embeddings[_rows_of(embedded_ids, voted_ids[held])],
                                       n_total=workflow.retirement_count, plan=plan, workers=threads)
        held_concentrations = held_scores.concentrations
        metrics = evaluate(held_concentrations, counts[held], schema, lower=held_scores.lower,
                           upper=held_scores.upper)
    timings["score"] = time.perf_counter() - clock

    clock = time.perf_counter()
    held_ids = voted_ids[held] if held.sum() >= 2 else voted_ids[:0]
    figures = gate_figures(champion=gate.champion_for(run), galaxy_ids=held_ids, counts=counts[held][:len(held_ids)],
                           challenger=(held_ids, held_concentrations), schema=schema)
    timings["gate"] = time.perf_counter() - clock

    galaxy_ids = embedded_ids[scored_rows]
    with _timed(timings, "queue"):
        keys = queue.queue_keys(workflow_id=workflow.pk, galaxy_ids=galaxy_ids, acquisition=scores.acquisition,
                                embedded_ids=embedded_ids, embeddings=embeddings, seed=run.pk)

    clock = time.perf_counter()
    weights = head_to_bytes(head)
    digest = hashlib.sha256(weights).hexdigest()
    stored_name = default_storage.save(f"models/{workflow.slug}/run{run.pk}-head-{digest[:16]}.pt",
                                       ContentFile(weights))
    try:
        with transaction.atomic():
            version = runs.record_model_version(
                run_id=run.pk, attempt=run.attempt, checkpoint_name=stored_name, checkpoint_sha256=digest,
                checkpoint_bytes=len(weights), metrics=metrics,
                train_metrics={"train_seconds": round(head.train_seconds, 3), "galaxies": int(train.sum())},
                history=[], device="cpu", chunks=[[int(galaxy_ids.min()), int(galaxy_ids.max())]] if len(galaxy_ids) else [],
                queue_rule=keys.rule)
            with _timed(timings, "write_rows"):
                rows = _predictions(version, galaxy_ids, scores.fractions, scores.lower, scores.upper,
                                    scores.acquisition, scores.entropy,
                                    sample_fraction_bytes(scores.concentrations, schema), priorities=keys.priorities)
            with _timed(timings, "write_insert"):
                if rows:
                    runs.record_chunk(run_id=run.pk, chunk_index=0, rows=rows)
            with _timed(timings, "write_activate"):
                finished = runs.finish_run(run_id=run.pk, figures=figures)
    except BaseException:
        default_storage.delete(stored_name)
        raise
    timings["write"] = time.perf_counter() - clock
    logger.info("head run %s %s: %d galaxies rescored", run.pk, finished.status, len(rows))
