"""The active-learning loop's records: a training run (what was trained on, how, and how it
went), the model version it produced (checkpoint, hold-out metrics, whether it drives the
queue) and that version's prediction for every galaxy."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from galaxies.models import Galaxy
from workflows.models import Workflow


class TrainingRun(models.Model):
    """One training of a workflow's model, from trigger to new queue priorities.

    Walks ``queued → running → succeeded | failed | cancelled``; while running, ``stage``
    says whether it is training, predicting the catalogue or applying the new priorities.
    ``kind`` is ``encoder`` (the whole network on the images: rare, ``gpu`` queue) or ``head``
    (a Bayesian head on the encoder's stored embeddings: frequent, CPU ``default`` queue). At
    most one run per workflow and kind is queued or running (a partial unique index)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    class Stage(models.TextChoices):
        WAITING = "waiting", "Waiting for a worker"
        TRAINING = "training", "Training"
        PREDICTING = "predicting", "Predicting the catalogue"
        APPLYING = "applying", "Applying new priorities"
        DONE = "done", "Done"

    class Trigger(models.TextChoices):
        ADMIN = "admin", "Admin"
        API = "api", "API"
        SCHEDULE = "schedule", "Automatic (new classifications)"
        DEMO = "demo", "Demo setup"

    class Kind(models.TextChoices):
        ENCODER = "encoder", "Encoder (full model on images, gpu queue)"
        HEAD = "head", "Head refresh (Bayesian head on stored embeddings, default queue)"

    class Gate(models.TextChoices):
        ACTIVATED = "activated", "Activated (not worse than the champion)"
        AWAITING_REVIEW = "awaiting_review", "Awaiting review (worse than the champion)"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    FINISHED_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="training_runs")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ENCODER)
    workflow_version = models.PositiveIntegerField(help_text="The workflow's tree version trained on.")
    tree_hash = models.CharField(max_length=32)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    triggered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="training_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.WAITING)
    full_retrain = models.BooleanField(default=False, help_text="Train from scratch instead of warm-starting.")
    init_model_version = models.ForeignKey("ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="warm_started_runs",
                                           help_text="Encoder runs: the active model warm-started from, if "
                                                     "any. Head runs: the encoder version whose stored "
                                                     "embeddings the head is trained on.")
    hyperparameters = models.JSONField(default=dict, help_text="The full training configuration.")
    device = models.CharField(max_length=32, blank=True)
    expert_weight = models.PositiveSmallIntegerField(
        default=0, help_text="Each expert answer adds this many votes to the training targets (0: volunteers only).")

    # The training set, frozen when the run starts: the exact catalogue passed to training.
    snapshot_file = models.CharField(max_length=300, blank=True, help_text="CSV under MEDIA_ROOT.")
    snapshot_sha256 = models.CharField(max_length=64, blank=True)
    snapshot_taken_at = models.DateTimeField(null=True, blank=True)
    snapshot_galaxies = models.PositiveIntegerField(default=0)
    snapshot_holdout_galaxies = models.PositiveIntegerField(default=0)
    snapshot_last_classification_id = models.BigIntegerField(
        null=True, blank=True, help_text="Newest classification counted in the snapshot.")
    snapshot_classifications = models.PositiveIntegerField(default=0, help_text="Counted classifications up to then.")
    snapshot_simulated_classifications = models.PositiveIntegerField(
        default=0, help_text="Of those, made by simulated volunteers (demo seed votes).")

    progress = models.JSONField(default=dict, blank=True, help_text="Latest epoch, batch and losses.")
    history = models.JSONField(default=list, blank=True, help_text="Per-epoch losses.")
    prediction_chunks = models.JSONField(default=list, blank=True,
                                         help_text="[first, last] galaxy id of each prediction chunk.")
    prediction_chunks_done = models.JSONField(default=list, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)

    # The champion/challenger gate (retraining.gate), decided when the run finishes.
    gate_decision = models.CharField(max_length=16, choices=Gate.choices, blank=True)
    gate_reason = models.CharField(max_length=300, blank=True)
    gate_champion = models.ForeignKey("ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="challenged_runs",
                                      help_text="The version the new model was compared with.")
    gate_challenger_loss = models.FloatField(null=True, blank=True,
                                             help_text="Mean hold-out loss (nats a galaxy) of the new model.")
    gate_champion_loss = models.FloatField(null=True, blank=True,
                                           help_text="The champion's, on the same galaxies and votes.")
    gate_galaxies = models.PositiveIntegerField(default=0, help_text="Hold-out galaxies both models scored.")

    attempt = models.PositiveIntegerField(default=0, help_text="How many times a worker has taken the run up.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the worker process training it.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    trained_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "kind"], condition=Q(status__in=["queued", "running"]),
                                    name="one_unfinished_training_run_per_workflow_kind"),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="training_run_status_heartbeat")]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.workflow.slug} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        return ((self.finished_at or self.heartbeat_at or self.started_at) - self.started_at).total_seconds()


class ModelVersion(models.Model):
    """A trained model of one workflow. Exactly one version per workflow is active: its
    acquisition scores are the queue priorities. An ``encoder`` version is a whole network
    (its catalogue prediction also stores every galaxy's embedding); a ``head`` version is a
    Bayesian head on the embeddings of its ``encoder`` version."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="model_versions")
    kind = models.CharField(max_length=16, choices=TrainingRun.Kind.choices, default=TrainingRun.Kind.ENCODER)
    encoder = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="heads",
                                help_text="Head versions: the encoder version whose embeddings they score.")
    number = models.PositiveIntegerField()
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="model_version")
    checkpoint = models.FileField(upload_to="models/", max_length=300)
    checkpoint_sha256 = models.CharField(max_length=64)
    checkpoint_bytes = models.BigIntegerField(default=0)
    tree_hash = models.CharField(max_length=32, help_text="Schema (tree version hash) the model predicts.")
    answer_columns = models.JSONField(help_text="Answer order of the stored prediction arrays.")
    metrics = models.JSONField(default=dict, blank=True, help_text="Metrics on the fixed random hold-out.")
    train_metrics = models.JSONField(default=dict, blank=True, help_text="Metrics on training's own validation split.")
    predictions_complete = models.BooleanField(default=False)
    queue_rule = models.JSONField(
        default=dict, blank=True,
        help_text="How its predictions' priorities were ordered when it scored the catalogue (retraining.queue).")
    is_active = models.BooleanField(default=False)
    activated_at = models.DateTimeField(null=True, blank=True)
    activated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="activated_model_versions",
                                     help_text="Who activated it last (empty: the gate did, automatically).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="unique_model_version_number"),
            models.UniqueConstraint(fields=["workflow"], condition=Q(is_active=True),
                                    name="one_active_model_version_per_workflow"),
        ]

    def __str__(self) -> str:
        head = f" (head on v{self.encoder.number})" if self.kind == TrainingRun.Kind.HEAD and self.encoder else ""
        return f"{self.workflow.slug} model v{self.number}{head}{' (active)' if self.is_active else ''}"

    @property
    def queue_rule_summary(self) -> str:
        """The queue rule in words, for the admin, the API and the run log."""
        return describe_queue_rule(self.queue_rule)

    @property
    def encoder_version(self) -> "ModelVersion":
        """The version whose embeddings this model's scores come from (itself for an encoder)."""
        return self.encoder if self.kind == TrainingRun.Kind.HEAD else self


def describe_queue_rule(rule: dict) -> str:
    """``{"acquisition": "power-bald", "beta": 1.0, "start": {...}}`` as "TypiClust start (…), then power BALD (β = 1)"."""
    if not rule:
        return "BALD (recorded before the queue rule existed)"
    order = (f"power BALD (β = {rule.get('beta', 1.0):g})" if rule.get("acquisition") == "power-bald" else "BALD")
    start = rule.get("start")
    if not start:
        return order
    return (f"TypiClust start ({start['picks']} picks first; {start['voted']} of {start['coverage_labels']} "
            f"galaxies voted), then {order}")


class Prediction(models.Model):
    """One model version's posterior for one galaxy; arrays follow ``answer_columns``."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="predictions")
    fractions = models.JSONField(help_text="Mean vote fraction per answer.")
    lower = models.JSONField(help_text="Lower end of the 90% credible interval per answer.")
    upper = models.JSONField(help_text="Upper end of the 90% credible interval per answer.")
    acquisition = models.FloatField(help_text="Tree-wide BALD: expected information from 40 more votes.")
    priority = models.FloatField(
        null=True, blank=True,
        help_text="Its queue priority when this version is active (the version's queue_rule on the acquisition "
                  "score); empty on rows stored before the rule existed, which queue by acquisition.")
    entropy = models.FloatField(help_text="Predictive entropy summed over the tree.")
    sample_fractions = models.BinaryField(
        null=True, blank=True, help_text="Each posterior sample's mean fraction per answer, (T, A) float16 bytes.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "galaxy"], name="unique_prediction")]
        indexes = [models.Index(fields=["model_version", "-acquisition"], name="prediction_acquisition")]

    def __str__(self) -> str:
        return f"{self.galaxy.id_str} by {self.model_version}"


class GalaxyEmbedding(models.Model):
    """One encoder version's pooled features of one galaxy, stored with its catalogue
    prediction so a head can be retrained and the catalogue rescored without images.

    Little-endian float16 bytes (``classifier.live_head.embedding_bytes``): 2 bytes a
    dimension, 512 B a galaxy at D = 256. A bytea row beside the predictions rather than an
    array file per chunk: it is written in the same transaction as the chunk's predictions
    (replaced together on redelivery, deleted with its version), and 100k rows load in about a
    second (tests/benchmarks/head_refresh_benchmark.py), well under the refresh's budget."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="embeddings")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="embeddings")
    vector = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model_version", "galaxy"], name="unique_galaxy_embedding")]

    def __str__(self) -> str:
        return f"embedding of {self.galaxy_id} by {self.model_version_id}"
