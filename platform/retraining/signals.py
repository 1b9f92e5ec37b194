"""The automatic triggers: after a counted classification commits, bookkeeping tasks check
whether enough new votes arrived for a head refresh (``HEAD_REFRESH_AFTER_CLASSIFICATIONS``,
the live queue) or an encoder run (``RETRAIN_AFTER_CLASSIFICATIONS``)."""

from django.conf import settings
from django.dispatch import receiver

from classifications.signals import classification_counted


def _due(threshold: int, classification_id: int) -> bool:
    # Checking every tenth of the threshold keeps the check off most requests.
    return threshold > 0 and classification_id % max(1, threshold // 10) == 0


@receiver(classification_counted, dispatch_uid="retraining_automatic_check")
def check_after_classification(sender, *, workflow_id: int, classification_id: int, **kwargs) -> None:
    from .tasks import enqueue_automatic_check, enqueue_head_refresh_check

    if _due(settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS, classification_id):
        enqueue_head_refresh_check(workflow_id)
    if _due(settings.RETRAIN_AFTER_CLASSIFICATIONS, classification_id):
        enqueue_automatic_check(workflow_id)
