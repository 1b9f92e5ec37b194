from rest_framework import serializers

from .models import ModelVersion, TrainingRun

MAX_EPOCHS = 500
MAX_EXPERT_WEIGHT = 100


class TrainingOverridesSerializer(serializers.Serializer):
    """Hyper-parameters an admin may override for one run (the rest come from the preset)."""

    epochs = serializers.IntegerField(min_value=1, max_value=MAX_EPOCHS, required=False)
    batch_size = serializers.IntegerField(min_value=1, max_value=4096, required=False)
    lr = serializers.FloatField(min_value=1e-7, max_value=1.0, required=False)
    weight_decay = serializers.FloatField(min_value=0.0, max_value=1.0, required=False)
    patience = serializers.IntegerField(min_value=1, max_value=MAX_EPOCHS, required=False)
    image_size = serializers.IntegerField(min_value=16, max_value=512, required=False)
    dropout = serializers.FloatField(min_value=0.0, max_value=0.9, required=False)
    val_fraction = serializers.FloatField(min_value=0.01, max_value=0.5, required=False)
    seed = serializers.IntegerField(min_value=0, required=False)
    augment = serializers.BooleanField(required=False)
    eval_mc_samples = serializers.IntegerField(min_value=1, max_value=100, required=False)
    widths = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2048),
                                   min_length=1, max_length=8, required=False)
    device = serializers.RegexField(r"^(auto|cpu|cuda(:\d+)?|mps)$", required=False)


class HeadOverridesSerializer(serializers.Serializer):
    """``classifier.heads.HeadConfig`` fields an admin may override for one head run."""

    kind = serializers.ChoiceField(choices=["ensemble", "mc_dropout"], required=False)
    members = serializers.IntegerField(min_value=1, max_value=64, required=False)
    hidden = serializers.IntegerField(min_value=1, max_value=1024, required=False)
    steps = serializers.IntegerField(min_value=0, max_value=20000, required=False)
    dropout = serializers.FloatField(min_value=0.0, max_value=0.9, required=False)
    mc_passes = serializers.IntegerField(min_value=1, max_value=256, required=False)
    lr = serializers.FloatField(min_value=1e-7, max_value=1.0, required=False)
    seed = serializers.IntegerField(min_value=0, required=False)


class StartRunSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TrainingRun.Kind.choices, default=TrainingRun.Kind.ENCODER,
                                   help_text="encoder: the whole network on the images; head: a Bayesian head on "
                                             "the active encoder's stored embeddings (the live queue).")
    full_retrain = serializers.BooleanField(default=False, help_text="Train from scratch, not from the active model.")
    hyperparameters = TrainingOverridesSerializer(required=False)
    head = HeadOverridesSerializer(required=False, help_text="Head runs: HeadConfig overrides.")
    expert_weight = serializers.IntegerField(min_value=0, max_value=MAX_EXPERT_WEIGHT, default=0,
                                             help_text="Votes each expert answer adds to the training targets.")


class TrainingRunSerializer(serializers.ModelSerializer):
    workflow = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model_version = serializers.SerializerMethodField()
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)  # null until the run ends

    class Meta:
        model = TrainingRun
        fields = ["id", "workflow", "kind", "workflow_version", "trigger", "status", "stage", "full_retrain",
                  "init_model_version", "hyperparameters", "device", "progress", "history",
                  "snapshot_galaxies", "snapshot_holdout_galaxies", "snapshot_sha256",
                  "snapshot_last_classification_id", "snapshot_classifications",
                  "snapshot_simulated_classifications", "expert_weight", "gate_decision", "gate_reason",
                  "gate_champion", "gate_challenger_loss", "gate_champion_loss", "gate_galaxies", "attempt", "log", "error", "created_at", "started_at",
                  "trained_at", "finished_at", "heartbeat_at", "duration_seconds", "model_version"]

    def get_model_version(self, run: TrainingRun) -> int | None:
        version = getattr(run, "model_version", None)
        return version.pk if version is not None else None


class ModelVersionSerializer(serializers.ModelSerializer):
    workflow = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    queue_rule_summary = serializers.CharField(read_only=True)

    class Meta:
        model = ModelVersion
        fields = ["id", "workflow", "kind", "encoder", "number", "run", "checkpoint_sha256", "checkpoint_bytes", "tree_hash",
                  "metrics", "train_metrics", "predictions_complete", "queue_rule", "queue_rule_summary", "is_active",
                  "activated_at", "activated_by", "created_at"]
