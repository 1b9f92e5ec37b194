"""Celery tasks of the retraining loop. Each takes ids only and calls a service that locks
the run row and checks its status first, so a redelivered message does nothing harmful.
Training and catalogue prediction go to the ``gpu`` queue, bookkeeping to ``default``
(routes in settings.CELERY_TASK_ROUTES)."""

from celery import shared_task
from django.conf import settings

from . import pipeline, services


@shared_task(acks_late=True, soft_time_limit=settings.RETRAIN_SOFT_TIME_LIMIT,
             time_limit=settings.RETRAIN_SOFT_TIME_LIMIT + 600)
def train_model(run_id: int) -> None:
    pipeline.train_run(run_id=run_id)


@shared_task(acks_late=True, soft_time_limit=settings.RETRAIN_CHUNK_TIME_LIMIT,
             time_limit=settings.RETRAIN_CHUNK_TIME_LIMIT + 120)
def predict_chunk(run_id: int, chunk_index: int) -> None:
    pipeline.predict_chunk(run_id=run_id, chunk_index=chunk_index)


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def apply_priorities(run_id: int) -> None:
    pipeline.apply_priorities(run_id=run_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def reap_stale_runs() -> None:
    services.reap_stale_runs()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def check_automatic_retraining(workflow_id: int) -> None:
    services.maybe_start_automatic_run(workflow_id=workflow_id)
