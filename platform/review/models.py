"""What scientists add to the catalogue: expert classifications (stored apart from the
volunteers' votes and never counted in them), flags, and recorded retirement overrides; and
the model–crowd disagreement score per model version, which the review queue sorts by."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from galaxies.models import Galaxy
from retraining.models import ModelVersion
from workflows.models import Workflow


class ExpertClassification(models.Model):
    """One expert's answers for one galaxy, validated against the workflow's tree like a
    volunteer's; an expert revising their label replaces it (one per expert, galaxy, workflow)."""

    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="expert_classifications")
    workflow_version = models.PositiveIntegerField(help_text="The tree version the answers were validated with.")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="expert_classifications")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                               related_name="expert_classifications")
    annotations = models.JSONField(help_text="Ordered [{question, answer}] following the tree.")
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["workflow", "galaxy", "expert"],
                                               name="one_expert_classification_per_expert")]
        # The workbench's role, held by the scientist group (and every superuser).
        permissions = [("use_workbench", "Can use the scientists' workbench")]

    def __str__(self) -> str:
        return f"expert {self.expert_id} on {self.galaxy_id}"


class Flag(models.Model):
    """A scientist's note that a galaxy needs attention; open until someone resolves it."""

    class Kind(models.TextChoices):
        ARTIFACT = "artifact", "Artifact"
        INTERESTING = "interesting", "Interesting"
        NEEDS_DISCUSSION = "needs_discussion", "Needs discussion"
        BAD_IMAGE = "bad_image", "Bad image"

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="flags")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    comment = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="flags")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                    related_name="resolved_flags")
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["galaxy", "kind"], condition=Q(resolved_at__isnull=True),
                                name="flag_open_by_galaxy")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.galaxy_id}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class RetirementOverride(models.Model):
    """The audit trail of force-retire and un-retire: who, why, and what the status was
    before, so every override can be seen and undone by the opposite one."""

    class Action(models.TextChoices):
        RETIRE = "retire", "Force-retired"
        UNRETIRE = "unretire", "Un-retired"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="retirement_overrides")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="retirement_overrides")
    action = models.CharField(max_length=16, choices=Action.choices)
    reason = models.TextField()
    previous_retired_at = models.DateTimeField(null=True, blank=True)
    previous_retirement_reason = models.CharField(max_length=32, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="retirement_overrides")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workflow", "galaxy", "-created_at"], name="retirement_override_latest")]

    def __str__(self) -> str:
        return f"{self.action} {self.galaxy_id}@{self.workflow_id}"


class ReviewScore(models.Model):
    """Per model version and galaxy, the scores the review queue sorts by, each with its own
    index so a sorted first page walks an index instead of sorting the catalogue: copies of
    the prediction's BALD and entropy, and the model–crowd disagreement (None below the vote
    minimum) computed from the votes at refresh time (``votes_at_refresh``)."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="review_scores")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="review_scores")
    acquisition = models.FloatField()
    entropy = models.FloatField()
    disagreement = models.FloatField(null=True, blank=True,
                                     help_text="Dirichlet–Multinomial surprise of the votes, nats per vote.")
    votes_at_refresh = models.PositiveIntegerField(default=0)
    changed = models.FloatField(null=True, blank=True,
                                help_text="Largest |Δ mean fraction| over the answers since the previous model "
                                          "version (None when it did not predict this galaxy).")
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "galaxy"], name="unique_review_score")]
        indexes = [
            models.Index(fields=["model_version", "-acquisition"], name="review_score_bald"),
            models.Index(fields=["model_version", "-entropy"], name="review_score_entropy"),
            models.Index(fields=["model_version", "-disagreement"], condition=Q(disagreement__isnull=False),
                         name="review_score_disagreement"),
            models.Index(fields=["model_version", "-changed"], condition=Q(changed__isnull=False),
                         name="review_score_changed"),
        ]

    def __str__(self) -> str:
        return f"{self.galaxy_id} by {self.model_version_id}"


class IntervalExtreme(models.Model):
    """The widest and the narrowest 90 % intervals of each answer per model version: the
    ``REVIEW_WIDTH_EXTREMES`` galaxies at each end (ties at the cut included), so the queue's
    sort by one answer's interval width walks an index instead of computing the width from
    the JSON arrays of every prediction (1.4 s at 100k galaxies). Storing every galaxy × answer
    would be 34 rows a galaxy (~3 GB at 1M with its indexes); both ends of 34 answers are
    ~680 000 rows (~60 MB) whatever the catalogue's size. A page past the stored end (or a
    filter that leaves too few of them) is computed from the predictions instead."""

    class End(models.IntegerChoices):
        WIDEST = 1, "Widest"
        NARROWEST = -1, "Narrowest"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="interval_extremes")
    # No index of its own (the rows are read by version and answer): deleting a galaxy scans
    # these few hundred thousand rows once.
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="interval_extremes",
                               db_index=False)
    answer = models.PositiveSmallIntegerField(help_text="Index into the version's answer_columns.")
    end = models.SmallIntegerField(choices=End.choices)
    width = models.FloatField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "answer", "end", "galaxy"],
                                               name="unique_interval_extreme")]
        indexes = [models.Index(fields=["model_version", "answer", "end", "width", "galaxy"],
                                name="interval_extreme_width")]

    def __str__(self) -> str:
        return f"{self.galaxy_id} answer {self.answer} by {self.model_version_id}"


class EmbeddingIndex(models.Model):
    """The nearest-neighbour index of one encoder version's stored embeddings (a faiss index
    file in the storage, read through a verified local copy), built by a worker when a version
    using that encoder becomes active. Until it exists "more like this" scans the embeddings."""

    encoder_version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="embedding_index")
    file = models.FileField(upload_to="embedding_indexes/", max_length=300)
    sha256 = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, help_text="exact (flat scan) or ivf (inverted file, approximate).")
    vectors = models.PositiveIntegerField()
    dim = models.PositiveIntegerField()
    build_seconds = models.FloatField()
    built_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.kind} index of {self.vectors} embeddings by {self.encoder_version_id}"


class ExportJob(models.Model):
    """A catalogue export requested from the workbench and written by a worker into the
    storage (``review.export``'s streaming writers): who asked, for what, how it went, and the
    file to download. Walks ``queued → running → succeeded | failed``."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="export_jobs")
    format = models.CharField(max_length=16)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="export_jobs", help_text="None: the workflow had no model.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    file = models.FileField(upload_to="exports/", max_length=300, blank=True)
    bytes = models.BigIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["workflow", "-created_at"], name="export_job_latest")]

    def __str__(self) -> str:
        return f"{self.format} export {self.pk} of {self.workflow_id} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in (self.State.SUCCEEDED, self.State.FAILED)
