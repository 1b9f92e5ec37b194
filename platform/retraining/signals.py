"""The automatic trigger: after a counted classification commits, a bookkeeping task checks
whether enough new votes arrived since the last run (``RETRAIN_AFTER_CLASSIFICATIONS``)."""

from django.conf import settings
from django.dispatch import receiver

from classifications.signals import classification_counted


@receiver(classification_counted, dispatch_uid="retraining_automatic_check")
def check_after_classification(sender, *, workflow_id: int, classification_id: int, **kwargs) -> None:
    threshold = settings.RETRAIN_AFTER_CLASSIFICATIONS
    # Checking every tenth of the threshold keeps the check off most requests.
    if threshold <= 0 or classification_id % max(1, threshold // 10):
        return
    from .tasks import enqueue_automatic_check

    enqueue_automatic_check(workflow_id)
