"""Field-guide examples: real galaxies (or uploaded images) that show what an answer looks like.

The tree's answer help text is the fallback when an answer has no examples. Admins attach
examples by hand, or ``manage.py pick_field_guide_examples`` picks the galaxies whose votes
agree most strongly on each answer.
"""

from django.core.exceptions import ValidationError
from django.db import models

from galaxies.models import Galaxy
from workflows.models import Workflow


class FieldGuideExample(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="field_guide_examples")
    question = models.CharField(max_length=100, help_text="Question key in the workflow's tree.")
    answer = models.CharField(max_length=100, help_text="Answer key of that question.")
    galaxy = models.ForeignKey(Galaxy, null=True, blank=True, on_delete=models.CASCADE,
                               related_name="field_guide_examples",
                               help_text="A galaxy of the catalogue shown as the example …")
    image = models.ImageField(upload_to="field_guide/", blank=True, help_text="… or an uploaded image.")
    caption = models.CharField(max_length=300, blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Order among the answer's examples.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "question", "answer", "position", "id"]
        indexes = [models.Index(fields=["workflow", "question", "answer"], name="field_guide_answer")]
        constraints = [
            models.CheckConstraint(condition=models.Q(galaxy__isnull=False) | ~models.Q(image=""),
                                   name="field_guide_example_has_picture"),
            models.UniqueConstraint(fields=["workflow", "question", "answer", "galaxy"],
                                    condition=models.Q(galaxy__isnull=False), name="unique_field_guide_galaxy"),
        ]

    def __str__(self) -> str:
        return f"{self.workflow.slug}: {self.question} → {self.answer}"

    @property
    def image_url(self) -> str | None:
        if self.image:
            return self.image.url
        return self.galaxy.image.url if self.galaxy and self.galaxy.image else None

    def clean(self) -> None:
        if not self.galaxy_id and not self.image:
            raise ValidationError("Attach a galaxy or upload an image.")
        if self.workflow_id is None:
            return
        tree = self.workflow.decision_tree
        if self.question not in tree:
            raise ValidationError({"question": f"'{self.question}' is not a question of {self.workflow.slug}"})
        if tree.question(self.question).answer(self.answer) is None:
            raise ValidationError({"answer": f"'{self.answer}' is not an answer of '{self.question}'"})
