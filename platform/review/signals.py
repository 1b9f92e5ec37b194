"""Keep the review scores in step with the active model: when a model version becomes active
its disagreement scores are (re)computed in a worker."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from core.broker import publish
from retraining.models import ModelVersion


@receiver(post_save, sender=ModelVersion, dispatch_uid="review_refresh_on_activation")
def refresh_on_activation(sender, instance: ModelVersion, update_fields=None, **kwargs) -> None:
    if not instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    from .tasks import refresh_review_scores

    # Bounded and never raising: an unreachable broker must not undo or hold an activation (the
    # workbench's refresh button sends it again).
    transaction.on_commit(lambda: publish(refresh_review_scores, instance.pk))
