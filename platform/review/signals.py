"""Keep the review scores in step with the active model: when a model version becomes active
its disagreement scores are (re)computed in a worker."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from retraining.models import ModelVersion


@receiver(post_save, sender=ModelVersion, dispatch_uid="review_refresh_on_activation")
def refresh_on_activation(sender, instance: ModelVersion, update_fields=None, **kwargs) -> None:
    if not instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    from .tasks import refresh_review_scores

    # robust: an unreachable broker must never undo an activation.
    transaction.on_commit(lambda: refresh_review_scores.delay(instance.pk), robust=True)
