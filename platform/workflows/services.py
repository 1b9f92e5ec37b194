"""Writes for workflows: create or update a workflow from a tree document."""

from typing import Any

from django.db import transaction

from classifier.tree import DecisionTree

from .models import Workflow, WorkflowVersion
from .shipped import SHIPPED_WORKFLOWS
from .signals import workflow_tree_saved


@transaction.atomic
def upsert_workflow(*, slug: str, tree: DecisionTree | dict[str, Any], name: str | None = None,
                    retirement_count: int | None = None, random_fraction: float | None = None,
                    is_active: bool | None = None) -> Workflow:
    """Create the workflow or update its tree; the version bumps only when the tree's
    structure (keys and links) changes, not when wording changes."""
    decision_tree = tree if isinstance(tree, DecisionTree) else DecisionTree.from_dict(tree)
    document = decision_tree.to_dict()
    workflow = Workflow.objects.select_for_update().filter(slug=slug).first()
    if workflow is None:
        workflow = Workflow(slug=slug, name=name or decision_tree.title, description=decision_tree.description,
                            tree=document, tree_hash=decision_tree.version_hash, version=1)
    else:
        if workflow.tree_hash != decision_tree.version_hash:
            workflow.version += 1
            workflow.tree_hash = decision_tree.version_hash
        workflow.tree = document
        workflow.__dict__.pop("decision_tree", None)
        if name:
            workflow.name = name
    for field, value in (("retirement_count", retirement_count), ("random_fraction", random_fraction),
                         ("is_active", is_active)):
        if value is not None:
            setattr(workflow, field, value)
    workflow.full_clean()
    workflow.save()
    WorkflowVersion.objects.get_or_create(workflow=workflow, number=workflow.version,
                                          defaults={"tree": document, "tree_hash": workflow.tree_hash})
    workflow_tree_saved.send(sender=Workflow, workflow=workflow)
    return workflow


def install_shipped_workflows() -> list[Workflow]:
    """Create the shipped workflows that are missing (the data migration does this on a new
    database; this puts them back after a test flush or a manual deletion)."""
    return [upsert_workflow(slug=slug, tree=DecisionTree.load(tree_name), is_active=True)
            for slug, tree_name in SHIPPED_WORKFLOWS.items() if not Workflow.objects.filter(slug=slug).exists()]
