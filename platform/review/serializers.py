"""Request bodies and response shapes of the workbench API."""

from django.urls import reverse
from rest_framework import serializers

from .errors import InvalidQuery
from .export import FORMATS
from .models import ExpertClassification, Flag, RetirementOverride


def parse(serializer_class: type[serializers.Serializer], data) -> dict:
    """Validated data, or an InvalidQuery naming the first field at fault."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        name, reasons = next(iter(serializer.errors.items()))
        reason = str(reasons[0]) if isinstance(reasons, list) and reasons else str(reasons)
        raise InvalidQuery(f"{name}: {reason}", field=name, detail={"errors": serializer.errors})
    return serializer.validated_data


class ExpertClassificationInput(serializers.Serializer):
    annotations = serializers.JSONField()
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class FlagInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Flag.Kind.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ResolveFlagInput(serializers.Serializer):
    resolution = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class RetirementInput(serializers.Serializer):
    retire = serializers.BooleanField()
    reason = serializers.CharField(max_length=2000, allow_blank=True)


class ShadowBanInput(serializers.Serializer):
    pseudonym = serializers.RegexField(r"^volunteer-[0-9a-f]{10}$", max_length=20,
                                       help_text="As the galaxy's dossier lists its classifications")
    reason = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")


class LiftShadowBanInput(serializers.Serializer):
    pseudonym = serializers.RegexField(r"^volunteer-[0-9a-f]{10}$", max_length=20,
                                       help_text="As the galaxy's dossier lists its classifications")


class ConeInput(serializers.Serializer):
    ra = serializers.FloatField()
    dec = serializers.FloatField()
    radius = serializers.FloatField(help_text="Degrees.")


class ExpertClassificationSerializer(serializers.ModelSerializer):
    galaxy = serializers.CharField(source="galaxy.id_str")
    workflow = serializers.CharField(source="workflow.slug")
    expert = serializers.CharField(source="expert.get_username")

    class Meta:
        model = ExpertClassification
        fields = ["id", "galaxy", "workflow", "workflow_version", "expert", "annotations", "comment",
                  "created_at", "updated_at"]


class FlagSerializer(serializers.ModelSerializer):
    galaxy = serializers.CharField(source="galaxy.id_str")
    created_by = serializers.CharField(source="created_by.get_username")
    resolved_by = serializers.CharField(source="resolved_by.get_username", allow_null=True, default=None)

    class Meta:
        model = Flag
        fields = ["id", "galaxy", "kind", "comment", "created_by", "created_at", "resolved_at", "resolved_by",
                  "resolution"]


class RetirementOverrideSerializer(serializers.ModelSerializer):
    galaxy = serializers.CharField(source="galaxy.id_str")
    workflow = serializers.CharField(source="workflow.slug")
    created_by = serializers.CharField(source="created_by.get_username")

    class Meta:
        model = RetirementOverride
        fields = ["id", "galaxy", "workflow", "action", "reason", "previous_retired_at", "previous_retirement_reason",
                  "created_by", "created_at"]


class ReviewQueueItemSerializer(serializers.Serializer):
    galaxy_id = serializers.IntegerField()
    id_str = serializers.CharField()
    ra = serializers.FloatField()
    dec = serializers.FloatField()
    survey = serializers.CharField()
    image_url = serializers.CharField(allow_null=True)
    bald = serializers.FloatField()
    entropy = serializers.FloatField()
    disagreement = serializers.FloatField(allow_null=True)
    changed = serializers.FloatField(allow_null=True,
                                     help_text="Largest |Δ mean fraction| since the previous model version.")
    votes = serializers.IntegerField()
    retired = serializers.BooleanField()
    retirement_reason = serializers.CharField()
    open_flags = serializers.BooleanField()
    expert_labelled = serializers.BooleanField()
    answers = serializers.DictField(child=serializers.DictField(child=serializers.FloatField(allow_null=True)))
    separation_deg = serializers.FloatField(required=False)


class ExportInput(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(FORMATS))
    model_version = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                             help_text="Model version number (default: the active one).")


class ExportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    workflow = serializers.CharField(source="workflow.slug")
    format = serializers.CharField()
    model_version = serializers.IntegerField(source="model_version.number", allow_null=True, default=None)
    requested_by = serializers.CharField(source="requested_by.get_username")
    state = serializers.CharField()
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()
    error = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.SerializerMethodField()

    def get_download_url(self, job) -> str | None:
        return reverse("review-export-download", args=[job.pk]) if job.state == "succeeded" else None
