"""Celery tasks of the retraining loop, and the only code that sends them. Each task takes
ids only, runs one pipeline step (which locks the run row and checks its status first, so a
redelivered message does nothing harmful) and sends the step the pipeline says comes next,
always from ``transaction.on_commit``. Training and catalogue prediction go to the ``gpu``
queue, bookkeeping to ``default`` (routes in settings.CELERY_TASK_ROUTES)."""

from celery import shared_task
from django.conf import settings
from django.db import transaction

from core.broker import publish
from workflows.models import Workflow

from . import pipeline, runs
from .models import TrainingRun


def enqueue_training(run_id: int) -> None:
    """Send a queued run (an encoder run to ``train_model``, a head run to ``refresh_head``) to
    a worker once the transaction that queued it commits, in one bounded attempt (an admin's
    request or a worker may be the caller); if the broker does not take it the run fails with
    that reason instead of waiting forever."""

    def send() -> None:
        task = refresh_head if TrainingRun.objects.filter(pk=run_id, kind=TrainingRun.Kind.HEAD).exists() else train_model
        failure = publish(task, run_id)
        if failure is not None:
            runs.fail_run(run_id=run_id, attempt=None, error=f"could not queue the training task: {failure}")

    transaction.on_commit(send)


def enqueue_automatic_check(workflow_id: int) -> None:
    """After a counted vote commits. A vote never waits on the broker or fails for it: a check
    that could not be sent is made by ``recheck_triggers`` (beat) instead."""
    transaction.on_commit(lambda: publish(check_automatic_retraining, workflow_id))


def enqueue_head_refresh_check(workflow_id: int) -> None:
    transaction.on_commit(lambda: publish(check_head_refresh, workflow_id))


@shared_task(acks_late=True, soft_time_limit=settings.RETRAIN_SOFT_TIME_LIMIT,
             time_limit=settings.RETRAIN_SOFT_TIME_LIMIT + 600)
def train_model(run_id: int) -> None:
    chunks = pipeline.train_run(run_id=run_id)
    if chunks == []:
        transaction.on_commit(lambda: apply_priorities.delay(run_id))
    for index in chunks or []:
        transaction.on_commit(lambda index=index: predict_chunk.delay(run_id, index))


@shared_task(acks_late=True, soft_time_limit=settings.RETRAIN_CHUNK_TIME_LIMIT,
             time_limit=settings.RETRAIN_CHUNK_TIME_LIMIT + 120)
def predict_chunk(run_id: int, chunk_index: int) -> None:
    if pipeline.predict_chunk(run_id=run_id, chunk_index=chunk_index):
        transaction.on_commit(lambda: apply_priorities.delay(run_id))


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def apply_priorities(run_id: int) -> None:
    pipeline.apply_priorities(run_id=run_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def reap_stale_runs() -> None:
    """Beat's reaper: sends the message each recovered run needs (see runs.recover_stale_runs)."""
    with transaction.atomic():
        for recovery in runs.recover_stale_runs():
            if recovery.action in ("train", "head"):
                enqueue_training(recovery.run_id)
            elif recovery.action == "apply":
                transaction.on_commit(lambda run_id=recovery.run_id: apply_priorities.delay(run_id))
            for index in recovery.chunks:
                transaction.on_commit(lambda run_id=recovery.run_id, index=index: predict_chunk.delay(run_id, index))


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def check_automatic_retraining(workflow_id: int) -> None:
    run = runs.maybe_start_automatic_run(workflow_id=workflow_id)
    if run is not None:
        enqueue_training(run.pk)


@shared_task(acks_late=True, soft_time_limit=settings.HEAD_REFRESH_TIME_LIMIT,
             time_limit=settings.HEAD_REFRESH_TIME_LIMIT + 60)
def refresh_head(run_id: int) -> None:
    run = pipeline.refresh_head(run_id=run_id)
    if run is not None:
        # Votes that arrived while this head trained may already be enough for the next one.
        enqueue_head_refresh_check(run.workflow_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def check_head_refresh(workflow_id: int) -> None:
    run = runs.maybe_start_head_refresh(workflow_id=workflow_id)
    if run is not None:
        enqueue_training(run.pk)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def recheck_triggers() -> None:
    """Beat: both automatic triggers for every active workflow, whatever the requests managed to
    send (each check is idempotent and reads only the votes since the last run)."""
    for workflow_id in Workflow.objects.filter(is_active=True).values_list("pk", flat=True):
        check_head_refresh(workflow_id)
        check_automatic_retraining(workflow_id)
