"""Celery tasks of the workbench: ids in, the service does the work."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def refresh_review_scores(model_version_id: int) -> None:
    services.refresh_review_scores(model_version_id=model_version_id)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def build_embedding_index(encoder_version_id: int) -> None:
    services.build_embedding_index(encoder_version_id=encoder_version_id)


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def run_export(export_job_id: int) -> None:
    services.run_export_job(job_id=export_job_id)
