"""Volunteers' classifications and, per galaxy and workflow, the running vote tally that
the queue, retirement and training read."""

import random

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from galaxies.models import Galaxy
from workflows.models import Workflow


def uniform_random() -> float:
    """Module-level so migrations can reference it as a field default."""
    return random.random()


class SubjectStatus(models.Model):
    """One galaxy in one workflow: its votes so far, whether it is retired, and its place
    in the queue. Updated under a row lock so counts stay exact under concurrent submits."""

    class RetirementReason(models.TextChoices):
        CLASSIFICATION_COUNT = "classification_count", "Reached the classification count"
        CONSENSUS = "consensus", "Votes already decisive"
        ADMIN = "admin", "Retired by an admin"

    # No index of its own: unique_subject_status leads with the workflow, and a counted vote
    # rewrites the row (not a HOT update), adding an entry to every index of the table.
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="subject_statuses",
                                 db_index=False)
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="subject_statuses")
    vote_counts = models.JSONField(default=dict, blank=True,
                                   help_text="Votes per answer column '{question}_{answer}'.")
    classification_count = models.PositiveIntegerField(default=0)
    retired_at = models.DateTimeField(null=True, blank=True)
    retirement_reason = models.CharField(max_length=32, choices=RetirementReason.choices, blank=True)
    priority = models.FloatField(default=uniform_random,
                                 help_text="Queue order, highest first: the active model's acquisition score.")
    random_key = models.FloatField(default=uniform_random, editable=False,
                                   help_text="Fixed uniform key: a model-independent split (e.g. the hold-out).")
    draw_key = models.FloatField(default=uniform_random, editable=False,
                                 help_text="Uniform key for drawing the random share of the queue; redrawn "
                                           "after each counted classification so draws stay uniform.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "subject statuses"
        constraints = [models.UniqueConstraint(fields=["workflow", "galaxy"], name="unique_subject_status")]
        indexes = [
            models.Index(fields=["workflow", "-priority"], condition=Q(retired_at__isnull=True),
                         name="subject_queue_priority"),
            models.Index(fields=["workflow", "draw_key"], condition=Q(retired_at__isnull=True),
                         name="subject_queue_draw"),
            # The review queue's sort by votes walks this (galaxy breaks ties in the same
            # direction). A vote already rewrites two indexed columns (draw_key, priority), so
            # the row is never a HOT update and this adds one index entry per vote.
            models.Index(fields=["workflow", "classification_count", "galaxy"], name="subject_vote_count"),
        ]

    def __str__(self) -> str:
        return f"{self.galaxy_id}@{self.workflow_id}"

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None


class Classification(models.Model):
    """One volunteer's answers for one galaxy. Only the volunteer's first classification of
    a galaxy counts towards the votes; the idempotency key makes retries safe."""

    class Selection(models.TextChoices):
        PRIORITY = "priority", "Chosen by priority"
        RANDOM = "random", "Drawn at random (spice)"
        DIRECT = "direct", "Requested directly"

    # No index of its own: the counted index leads with the workflow, and every index is paid for
    # on each of the millions of inserts.
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="classifications",
                                 db_index=False)
    workflow_version = models.PositiveIntegerField()
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="classifications")
    # Indexed only where set (classification_user): anonymous votes add no entry.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="classifications", db_index=False)
    volunteer_key = models.CharField(max_length=80, help_text="'user:<id>' or 'anon:<session id>'.")
    annotations = models.JSONField(help_text="Ordered [{question, answer}] following the tree.")
    idempotency_key = models.CharField(max_length=100)
    counted = models.BooleanField(default=True, help_text="In the tally: False for a repeat by the same volunteer "
                                                          "and for a shadow-banned volunteer's votes.")
    shadowed = models.BooleanField(default=False, db_default=False, help_text="Would count but its volunteer is shadow-banned: not in "
                                                            "the tally, shown to its volunteer as counted.")
    selection = models.CharField(max_length=16, choices=Selection.choices, default=Selection.DIRECT)
    is_simulated = models.BooleanField(default=False, help_text="Made by a simulated volunteer (demo).")
    is_favourite = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user_agent = models.CharField(max_length=400, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "galaxy", "volunteer_key"], condition=Q(counted=True),
                                    name="one_counted_classification_per_volunteer"),
            # A constraint, not unique=True: that would add a second, LIKE-only index on PostgreSQL.
            models.UniqueConstraint(fields=["idempotency_key"], name="unique_idempotency_key"),
        ]
        indexes = [models.Index(fields=["volunteer_key", "workflow", "galaxy"], name="classification_seen_by"),
                   # A user's deletion (SET NULL) finds their votes; `user_id IN (…)` implies the condition.
                   models.Index(fields=["user"], condition=Q(user__isnull=False), name="classification_user")]

    def __str__(self) -> str:
        return f"{self.volunteer_key} on {self.galaxy_id}"

    @property
    def counted_for_volunteer(self) -> bool:
        """What its volunteer is told: a shadow-banned volunteer sees the answers a counted vote gets."""
        return self.counted or self.shadowed


class ShadowBan(models.Model):
    """A volunteer (``user:<id>`` or an anonymous identity's ``anon:<id>``) whose votes do not
    count, without being told: their counted votes left the tallies when the ban was made
    (services.shadow_ban) and new ones are stored uncounted (``shadowed``)."""

    volunteer_key = models.CharField(max_length=80, unique=True, validators=[RegexValidator(
        r"^(user|anon):\S+$", "a volunteer key is 'user:<id>' or 'anon:<id>' (as in the classifications list)")])
    reason = models.TextField(blank=True)
    banned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    withdrawn_votes = models.PositiveIntegerField(default=0, help_text="Counted votes taken out of the tallies.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"shadow ban of {self.volunteer_key}"
