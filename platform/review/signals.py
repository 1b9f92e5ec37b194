"""Keep the workbench in step with the active model: when a model version becomes active its
review scores are (re)computed, and its encoder's neighbour index built if missing, in a worker
(retraining knows nothing of the workbench: it only saves the version). A new export job is
sent to a worker once its row is committed."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from core.broker import publish
from retraining.models import ModelVersion

from .models import ExportJob


@receiver(post_save, sender=ModelVersion, dispatch_uid="review_refresh_on_activation")
def refresh_on_activation(sender, instance: ModelVersion, update_fields=None, **kwargs) -> None:
    if not instance.is_active or (update_fields is not None and "is_active" not in update_fields):
        return
    from .tasks import build_embedding_index, refresh_review_scores

    encoder = instance.encoder_version
    # Bounded and never raising: an unreachable broker must not undo or hold an activation (the
    # workbench's refresh button sends it again).
    transaction.on_commit(lambda: publish(refresh_review_scores, instance.pk))
    if encoder is not None:
        transaction.on_commit(lambda: publish(build_embedding_index, encoder.pk))


@receiver(post_save, sender=ExportJob, dispatch_uid="review_run_new_export")
def run_new_export(sender, instance: ExportJob, created: bool, **kwargs) -> None:
    if not created:
        return
    from .tasks import run_export

    transaction.on_commit(lambda: publish(run_export, instance.pk))
