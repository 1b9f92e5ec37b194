"""What classifications does when the apps below it report a change: every galaxy has a status
row in every workflow (the queue and the submit path read them), so new galaxies and new
workflows get theirs in the same transaction. Connected in ClassificationsConfig.ready."""

from django.dispatch import receiver

from galaxies.signals import galaxies_saved
from workflows.models import Workflow
from workflows.signals import workflow_tree_saved

from .services import ensure_subject_statuses


@receiver(galaxies_saved, dispatch_uid="classifications_statuses_for_galaxies")
def statuses_for_saved_galaxies(sender, *, galaxy_ids: list[int], **kwargs) -> None:
    ensure_subject_statuses(galaxy_ids=galaxy_ids)


@receiver(workflow_tree_saved, dispatch_uid="classifications_statuses_for_workflow")
def statuses_for_saved_workflow(sender, *, workflow: Workflow, **kwargs) -> None:
    ensure_subject_statuses(workflow=workflow)
