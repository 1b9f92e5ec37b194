"""A workflow is a decision tree volunteers answer for every galaxy, with its retirement
policy. The tree itself is a ``classifier.tree.DecisionTree`` document: the same definition
drives the UI, annotation validation and the model's loss."""

from functools import cached_property

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from classifier.tree import DecisionTree

# Parsed trees by (workflow id, structure hash, last save): parsing and validating a tree costs
# ~0.3 ms, more than the rest of a submit's Python work, and the tree only changes on save.
_PARSED_TREES: dict[tuple, DecisionTree] = {}
_PARSED_TREES_MAX = 64


class Workflow(models.Model):
    class RetirementAgreement(models.TextChoices):
        """What early retirement promises (docs/retirement.md, "Which promise"): the majority of
        every question that will be scored stays as it is, or only those of the questions on the
        galaxy's majority path (the answers a consensus catalogue keeps) — fewer votes, but a
        smooth galaxy's minority bar vote may stop before its majority is settled."""

        EVERY_QUESTION = "every-question", "every question"
        MAJORITY_PATH = "majority-path", "majority path only"

    slug = models.SlugField(unique=True, help_text="Stable identifier used in URLs and the API.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    tree = models.JSONField(help_text="Decision tree document (see classifier/tree.py).")
    tree_hash = models.CharField(max_length=32, editable=False)
    version = models.PositiveIntegerField(default=1, editable=False,
                                          help_text="Bumps whenever the tree's structure changes.")
    retirement_count = models.PositiveIntegerField(default=40, validators=[MinValueValidator(1)])
    random_fraction = models.FloatField(
        default=0.2, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of the queue drawn uniformly at random ('spice') instead of by priority.")
    early_retirement = models.BooleanField(
        default=False, help_text="Retire a galaxy early once its votes can no longer change the majority.")
    retirement_agreement = models.CharField(
        max_length=16, choices=RetirementAgreement.choices, default=RetirementAgreement.EVERY_QUESTION,
        help_text="With early retirement: whose majorities must be settled — every question's, or only those "
                  "on the galaxy's majority path (fewer votes; off-path answers are not guaranteed).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"

    @cached_property
    def decision_tree(self) -> DecisionTree:
        """The parsed tree, shared by every instance of the same saved revision in this process."""
        if self.pk is None or self.updated_at is None:
            return DecisionTree.from_dict(self.tree)
        key = (self.pk, self.tree_hash, self.updated_at)
        tree = _PARSED_TREES.get(key)
        if tree is None:
            tree = DecisionTree.from_dict(self.tree)
            if len(_PARSED_TREES) >= _PARSED_TREES_MAX:
                _PARSED_TREES.clear()
            _PARSED_TREES[key] = tree
        return tree


class WorkflowVersion(models.Model):
    """Every tree a workflow has had, so a classification can be read against the tree it
    was validated with."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    tree = models.JSONField()
    tree_hash = models.CharField(max_length=32)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="unique_workflow_version")]

    def __str__(self) -> str:
        return f"{self.workflow.slug} v{self.number}"
