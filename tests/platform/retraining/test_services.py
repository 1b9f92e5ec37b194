"""The loop in one process (the same pipeline steps the Celery tasks chain): training on a
snapshot, hold-out metrics, catalogue predictions, priorities, warm start, roll-back, and
the status machine's guards."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from classifications.models import SubjectStatus
from classifications.selectors import next_subjects
from classifier.samples import sample_fractions_from_bytes
from retraining.errors import CannotActivate, RunAlreadyActive, RunFinished
from retraining.models import ModelVersion, Prediction, TrainingRun
from retraining.pipeline import execute_run_inline, sha256_of
from retraining.runs import (
    cancel_training_run,
    claim_run,
    maybe_start_automatic_run,
    record_progress,
    recover_stale_runs,
    start_training_run,
    worker_identity,
)
from retraining.services import activate_model_version
from tests.platform.factories import volunteer_client

from .conftest import TINY_TRAINING, make_galaxies, seed_votes

pytestmark = pytest.mark.django_db


def priorities_by_galaxy(workflow) -> dict[int, float]:
    return dict(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", "priority"))


def acquisition_by_galaxy(version) -> dict[int, float]:
    return dict(Prediction.objects.filter(model_version=version).values_list("galaxy_id", "acquisition"))


def test_run_trains_predicts_activates_and_rolls_back(decals):
    galaxies = make_galaxies(30)
    seed_votes(decals, galaxies[:24], volunteers=3)

    run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN, overrides=TINY_TRAINING)
    assert run.full_retrain and run.init_model_version is None  # nothing to warm-start from
    run = execute_run_inline(run_id=run.pk, log=lambda _m: None)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    first = run.model_version
    assert first.is_active and first.predictions_complete and first.number == 1

    # The snapshot is the exact catalogue trained on, checksummed; the hold-out is never in it.
    snapshot = pd.read_csv(Path(settings.MEDIA_ROOT) / run.snapshot_file)
    assert sha256_of(Path(settings.MEDIA_ROOT) / run.snapshot_file) == run.snapshot_sha256
    voted = SubjectStatus.objects.filter(workflow=decals, classification_count__gt=0)
    holdout = voted.filter(random_key__lt=settings.RETRAIN_HOLDOUT_FRACTION).count()
    assert (run.snapshot_galaxies, run.snapshot_holdout_galaxies) == (voted.count() - holdout, holdout)
    assert set(snapshot["id_str"]) == set(voted.values_list("galaxy__id_str", flat=True))
    assert snapshot["smooth-or-featured_smooth"].sum() + snapshot["smooth-or-featured_featured-or-disk"].sum() == 72
    assert run.snapshot_classifications == run.snapshot_simulated_classifications == 72
    assert run.hyperparameters["config"]["epochs"] == 2 and run.hyperparameters["config"]["image_size"] == 16
    assert [h["epoch"] for h in run.history] == [1, 2] and run.device == "cpu"

    # The checkpoint is stored under MEDIA_ROOT/models/ with its sha256.
    checkpoint = Path(first.checkpoint.path)
    assert checkpoint.is_relative_to(Path(settings.MEDIA_ROOT) / "models") and sha256_of(checkpoint) == first.checkpoint_sha256

    # Every galaxy of the catalogue (voted or not) is predicted; the queue follows the scores.
    scores = acquisition_by_galaxy(first)
    assert set(scores) == set(priorities_by_galaxy(decals)) and len(scores) == 30
    assert priorities_by_galaxy(decals) == pytest.approx(scores)
    prediction = Prediction.objects.filter(model_version=first).first()
    assert len(prediction.fractions) == len(first.answer_columns)
    assert all(lo <= f <= hi for lo, f, hi in zip(prediction.lower, prediction.fractions, prediction.upper))
    # Each MC-dropout sample's fractions are kept; their mean is the stored mean fraction.
    samples = sample_fractions_from_bytes(prediction.sample_fractions, len(first.answer_columns))
    assert samples.shape == (settings.RETRAIN_PREDICT_MC_SAMPLES, len(first.answer_columns))
    assert samples.mean(axis=0) == pytest.approx(prediction.fractions, abs=2e-3) and samples.std(axis=0).max() > 0
    queue = next_subjects(workflow=decals, volunteer_key="anon:new", limit=5, random_fraction=0.0)
    expected = sorted(scores, key=scores.get, reverse=True)[:5]
    assert sorted(item.galaxy_id for item in queue) == sorted(expected)

    body = volunteer_client().get(f"/api/galaxies/{prediction.galaxy.id_str}/", {"workflow": decals.slug}).json()
    block = body["workflows"][0]["prediction"]
    assert block["model_version"] == 1 and block["acquisition"] == pytest.approx(prediction.acquisition)
    smooth = block["questions"][0]["answers"][0]
    assert smooth["answer"] == "smooth" and smooth["lower"] <= smooth["fraction"] <= smooth["upper"]

    # A second run warm-starts from the active model and replaces it; roll-back restores v1's priorities.
    second = execute_run_inline(run_id=start_training_run(
        workflow=decals, trigger=TrainingRun.Trigger.API, overrides=TINY_TRAINING).pk,
        log=lambda _m: None)
    assert second.status == TrainingRun.Status.SUCCEEDED and second.init_model_version_id == first.pk
    assert not second.full_retrain
    assert list(ModelVersion.objects.filter(is_active=True)) == [second.model_version]
    assert priorities_by_galaxy(decals) == pytest.approx(acquisition_by_galaxy(second.model_version))
    activate_model_version(model_version_id=first.pk)
    assert list(ModelVersion.objects.filter(is_active=True)) == [first]
    assert priorities_by_galaxy(decals) == pytest.approx(scores)


def test_only_one_unfinished_run_per_workflow(decals):
    start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    with pytest.raises(RunAlreadyActive):
        start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    with pytest.raises(IntegrityError), transaction.atomic():  # the database enforces it too
        TrainingRun.objects.create(workflow=decals, workflow_version=1, tree_hash=decals.tree_hash,
                                   trigger="api", status=TrainingRun.Status.RUNNING)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_claim_walks_the_status_machine(decals):
    run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    claim = claim_run(run_id=run.pk, worker=worker_identity())
    assert claim is not None and not claim.resumed and claim.run.attempt == 1
    # A redelivered message while this (live) worker trains does nothing.
    assert claim_run(run_id=run.pk, worker=worker_identity()) is None
    # Once the worker process is gone, the next delivery takes over and resumes.
    host = worker_identity().rpartition(":")[0]
    TrainingRun.objects.filter(pk=run.pk).update(worker=f"{host}:{dead_pid()}")
    takeover = claim_run(run_id=run.pk, worker=worker_identity())
    assert takeover is not None and takeover.resumed and takeover.run.attempt == 2
    # The superseded attempt can no longer report progress: training would stop.
    assert not record_progress(run_id=run.pk, attempt=1, progress={"epoch": 3})
    assert record_progress(run_id=run.pk, attempt=2, progress={"epoch": 3})
    cancel_training_run(run_id=run.pk)
    assert not record_progress(run_id=run.pk, attempt=2, progress={"epoch": 4})
    assert claim_run(run_id=run.pk, worker=worker_identity()) is None
    with pytest.raises(RunFinished):
        cancel_training_run(run_id=run.pk)


def silence(run_id: int, seconds: float) -> None:
    TrainingRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_reaper_queues_a_silent_training_run_again_and_fails_it_after_the_last_attempt(decals, settings):
    settings.RETRAIN_HEARTBEAT_TIMEOUT, settings.RETRAIN_MAX_ATTEMPTS = 60, 2
    run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    claim_run(run_id=run.pk, worker="elsewhere:1")
    silence(run.pk, 59)
    assert recover_stale_runs() == []  # heartbeat is recent enough
    silence(run.pk, 61)
    assert [(r.run_id, r.action) for r in recover_stale_runs()] == [(run.pk, "train")]
    run.refresh_from_db()
    assert (run.status, run.stage, run.attempt) == (TrainingRun.Status.QUEUED, TrainingRun.Stage.WAITING, 1)
    assert "queued again" in run.log
    assert recover_stale_runs() == []  # the message was just sent: no duplicate before RETRAIN_QUEUED_RESEND
    # The lost attempt cannot write any more; the next delivery takes the run over and resumes.
    assert not record_progress(run_id=run.pk, attempt=1, progress={"epoch": 3})
    takeover = claim_run(run_id=run.pk, worker="elsewhere:2")
    assert takeover.resumed and takeover.run.attempt == 2 and "attempt 2 resumes" in takeover.run.log
    silence(run.pk, 61)
    assert [(r.run_id, r.action) for r in recover_stale_runs()] == [(run.pk, "failed")]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "no heartbeat" in run.error and "2 attempt(s)" in run.error
    retry = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)  # the workflow is free
    assert retry.status == TrainingRun.Status.QUEUED


def test_reaper_sends_missing_chunks_of_a_silent_predicting_run_again(decals, settings):
    settings.RETRAIN_HEARTBEAT_TIMEOUT, settings.RETRAIN_MAX_ATTEMPTS = 60, 2
    run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    claim_run(run_id=run.pk, worker="elsewhere:1")
    TrainingRun.objects.filter(pk=run.pk).update(stage=TrainingRun.Stage.PREDICTING,
                                                 prediction_chunks=[[1, 5], [6, 9], [10, 12]],
                                                 prediction_chunks_done=[1])
    silence(run.pk, 61)
    recoveries = recover_stale_runs()
    assert [(r.run_id, r.action, r.chunks) for r in recoveries] == [(run.pk, "predict", (0, 2))]
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.RUNNING and run.stage == TrainingRun.Stage.PREDICTING
    assert run.attempt == 2 and "chunks [0, 2] sent again" in run.log
    # Out of attempts, a predicting run may be waiting for a busy queue: failed only after the time limit.
    silence(run.pk, 61)
    assert recover_stale_runs() == []
    silence(run.pk, settings.RETRAIN_SOFT_TIME_LIMIT + 1)
    assert [r.action for r in recover_stale_runs()] == ["failed"]


def test_reaper_sends_a_queued_run_whose_message_was_lost_again(decals, settings):
    settings.RETRAIN_QUEUED_RESEND = 600
    run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    assert recover_stale_runs() == []
    TrainingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=601))
    assert [(r.run_id, r.action) for r in recover_stale_runs()] == [(run.pk, "train")]
    assert recover_stale_runs() == []  # once per RETRAIN_QUEUED_RESEND
    claim = claim_run(run_id=run.pk, worker=worker_identity())
    assert claim is not None and not claim.resumed  # a first start, even though it was sent twice
    assert claim_run(run_id=run.pk, worker=worker_identity()) is None  # the duplicate does nothing


def test_too_little_data_fails_the_run_naming_the_reason(decals):
    seed_votes(decals, make_galaxies(3), volunteers=1)
    run = execute_run_inline(run_id=start_training_run(
        workflow=decals, trigger=TrainingRun.Trigger.ADMIN, overrides=TINY_TRAINING).pk)
    assert run.status == TrainingRun.Status.FAILED
    assert "needs at least 5 classified galaxies" in run.error
    assert not ModelVersion.objects.exists()


def test_version_without_complete_predictions_cannot_be_activated(decals):
    version = ModelVersion.objects.create(workflow=decals, number=1, checkpoint="models/x.pt",
                                          checkpoint_sha256="0" * 64, tree_hash=decals.tree_hash, answer_columns=[])
    with pytest.raises(CannotActivate):
        activate_model_version(model_version_id=version.pk)
    assert not ModelVersion.objects.filter(is_active=True).exists()


def test_automatic_run_after_enough_new_classifications(decals, settings):
    settings.RETRAIN_AFTER_CLASSIFICATIONS = 8
    galaxies = make_galaxies(6)
    seed_votes(decals, galaxies, volunteers=1)
    assert maybe_start_automatic_run(workflow_id=decals.pk) is None  # 6 < 8
    seed_votes(decals, galaxies, volunteers=1, seed=1)
    run = maybe_start_automatic_run(workflow_id=decals.pk)
    assert run is not None and run.trigger == TrainingRun.Trigger.SCHEDULE
    assert maybe_start_automatic_run(workflow_id=decals.pk) is None  # one at a time


def test_a_burst_from_few_volunteers_does_not_start_a_run_but_as_many_as_the_setting_do(decals, settings):
    settings.RETRAIN_AFTER_CLASSIFICATIONS = 8
    settings.RETRAIN_MIN_DISTINCT_VOLUNTEERS = 4
    galaxies = make_galaxies(10)
    seed_votes(decals, galaxies, volunteers=2)  # 20 new votes, 2.5x the threshold, from 2 identities
    assert maybe_start_automatic_run(workflow_id=decals.pk) is None
    seed_votes(decals, galaxies[:1], volunteers=1, seed=1)  # a third
    assert maybe_start_automatic_run(workflow_id=decals.pk) is None
    seed_votes(decals, galaxies[:1], volunteers=1, seed=2)  # the fourth distinct volunteer
    run = maybe_start_automatic_run(workflow_id=decals.pk)
    assert run is not None and run.trigger == TrainingRun.Trigger.SCHEDULE


def test_counted_submissions_schedule_the_automatic_check(decals, settings, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    """The submit path writes in plain SQL, so the trigger must hang on the service's own event."""
    from retraining import tasks

    settings.RETRAIN_AFTER_CLASSIFICATIONS = 10  # check after every classification
    scheduled = []
    monkeypatch.setattr(tasks.check_automatic_retraining, "apply_async", lambda args, **kwargs: scheduled.append(*args))
    galaxy = make_galaxies(1)[0]
    client = volunteer_client()
    body = {"workflow": decals.slug, "galaxy": galaxy.id_str, "idempotency_key": "auto-check-0001",
            "annotations": [{"question": "smooth-or-featured", "answer": "artifact"}]}
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/classifications/", body, format="json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/classifications/", body, format="json").status_code == 200  # replay
    assert scheduled == [decals.pk]


def test_unreachable_broker_fails_the_run_instead_of_leaving_it_queued(decals, monkeypatch,
                                                                       django_capture_on_commit_callbacks):
    from kombu.exceptions import OperationalError

    from retraining import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.train_model, "apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.API)
        tasks.enqueue_training(run.pk)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "Connection refused" in run.error


def test_asking_for_a_new_run_fails_a_silent_one_where_no_beat_recovers_it(decals, settings):
    run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    claim_run(run_id=run.pk, worker="elsewhere:1")
    with pytest.raises(RunAlreadyActive):
        start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)  # heartbeat fresh
    silence(run.pk, settings.RETRAIN_HEARTBEAT_TIMEOUT + 1)
    retry = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    run.refresh_from_db()
    assert run.status == TrainingRun.Status.FAILED and "no heartbeat" in run.error
    assert retry.status == TrainingRun.Status.QUEUED
