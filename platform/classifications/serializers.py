import re
from typing import Any

from django.core.files.storage import FileSystemStorage
from rest_framework import serializers

from core.errors import DomainError
from galaxies.models import Galaxy
from galaxies.serializers import GalaxySerializer

from .errors import InvalidRequest
from .models import Classification
from .selectors import QueueItem


class AnnotationSerializer(serializers.Serializer):
    question = serializers.CharField()
    answer = serializers.CharField()


class _StrictText:
    """A text field that takes only JSON strings: DRF's CharField turns 0 into "0", so a body
    the schema calls invalid was accepted (schema fuzzing)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(_StrictText, serializers.CharField):
    pass


class StrictSlugField(_StrictText, serializers.SlugField):
    pass


class ClassificationInputSerializer(serializers.Serializer):
    """Shape only; whether the annotations follow the tree is the service's job."""

    workflow = StrictSlugField()
    galaxy = StrictCharField(max_length=100, help_text="The galaxy's id_str.")
    annotations = serializers.JSONField(allow_null=True,
                                        help_text="Ordered list of {question, answer} following the tree.")
    idempotency_key = StrictCharField(min_length=8, max_length=100,
                                            help_text="Client-generated unique key (e.g. a UUID); retries reuse it.")
    started_at = serializers.DateTimeField(required=False, allow_null=True)
    finished_at = serializers.DateTimeField(required=False, allow_null=True)
    selection = serializers.ChoiceField(choices=Classification.Selection.choices, required=False,
                                        default=Classification.Selection.DIRECT)


class ClassificationOutputSerializer(serializers.ModelSerializer):
    workflow = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    galaxy = serializers.SlugRelatedField(slug_field="id_str", read_only=True)
    annotations = serializers.ListField(child=AnnotationSerializer())
    counted = serializers.BooleanField(source="counted_for_volunteer", read_only=True)

    class Meta:
        model = Classification
        fields = ["id", "workflow", "workflow_version", "galaxy", "annotations", "idempotency_key", "counted",
                  "selection", "is_simulated", "is_favourite", "started_at", "finished_at", "created_at"]


class QueueItemSerializer(serializers.Serializer):
    """The schema of a queue item; bodies come from queue_item_body."""

    galaxy = GalaxySerializer()
    selection = serializers.CharField()
    priority = serializers.FloatField()
    classification_count = serializers.IntegerField()


_PLAIN_SLUG = re.compile(r"[-a-zA-Z0-9_]+")
_SELECTIONS = frozenset(Classification.Selection.values)
_DATETIME_INPUT = serializers.DateTimeField()


def _plain_text(value: Any, *, min_length: int, max_length: int) -> bool:
    return (isinstance(value, str) and min_length <= len(value) <= max_length and value.isascii()
            and value.isprintable() and value == value.strip())


def _plain_classification_input(data: Any) -> dict[str, Any] | None:
    """What ClassificationInputSerializer would validate `data` to, for bodies that are plainly
    well-formed; None for anything else (the serializer then decides and words the errors)."""
    if type(data) is not dict or "annotations" not in data:
        return None
    workflow, galaxy, key = data.get("workflow"), data.get("galaxy"), data.get("idempotency_key")
    if not (isinstance(workflow, str) and _PLAIN_SLUG.fullmatch(workflow)
            and _plain_text(galaxy, min_length=1, max_length=100) and _plain_text(key, min_length=8, max_length=100)):
        return None
    selection = data.get("selection", Classification.Selection.DIRECT)
    if not isinstance(selection, str) or selection not in _SELECTIONS:
        return None
    validated = {"workflow": workflow, "galaxy": galaxy, "annotations": data["annotations"], "idempotency_key": key,
                 "selection": selection}
    for name in ("started_at", "finished_at"):
        if name in data:
            value = data[name]
            if value is not None and not isinstance(value, str):
                return None
            try:
                validated[name] = None if value is None else _DATETIME_INPUT.to_internal_value(value)
            except serializers.ValidationError:
                return None
    return validated


def classification_input(data: Any) -> dict[str, Any]:
    """The validated submit body. Plainly well-formed bodies skip the serializer, whose
    per-instance field copies were the largest CPU cost of a submit after the SQL; anything
    else goes through it, so errors stay the serializer's."""
    validated = _plain_classification_input(data)
    if validated is not None:
        return validated
    serializer = ClassificationInputSerializer(data=data)
    if not serializer.is_valid():
        raise InvalidRequest.from_serializer_errors(serializer.errors)
    return serializer.validated_data


MAX_BATCH = 50


class ClassificationBatchInputSerializer(serializers.Serializer):
    """The schema of a batch; items are validated one by one by classification_input."""

    classifications = ClassificationInputSerializer(many=True, help_text=f"1–{MAX_BATCH} classifications.")


def classification_batch_input(data: Any) -> list[dict[str, Any]]:
    """The validated items of a batch body. A batch whose shape is wrong is refused whole,
    naming the item (``classifications[3].idempotency_key``); nothing of it is stored."""
    items = data.get("classifications") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InvalidRequest("classifications: must be a list of classifications", field="classifications")
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidRequest(f"classifications: must hold 1 to {MAX_BATCH} items, got {len(items)}",
                             field="classifications")
    validated = []
    for index, item in enumerate(items):
        try:
            validated.append(classification_input(item))
        except DomainError as exc:
            raise type(exc)(f"classifications[{index}].{exc.message}", field=f"classifications[{index}].{exc.field}",
                            detail=exc.detail) from exc
    return validated


# The hot paths build their bodies as plain dicts: a serializer builds its fields anew for
# every instance, which cost more CPU than the rest of a submit. Same fields and formats as the
# serializers above (tests compare the two).
_DATETIME = serializers.DateTimeField()
_IMAGE_STORAGE = Galaxy._meta.get_field("image").storage
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*")


def _image_url(name: str) -> str:
    """storage.url(name); a plain relative path on the file-system storage is just appended to
    its base URL, without the urljoin that cost a sixth of a queue request."""
    base = _IMAGE_STORAGE.base_url if isinstance(_IMAGE_STORAGE, FileSystemStorage) else None
    if base and base.endswith("/") and _PLAIN_PATH.fullmatch(name):
        return base + name
    return _IMAGE_STORAGE.url(name)


def classification_body(classification: Classification) -> dict[str, Any]:
    """ClassificationOutputSerializer's body; the workflow and galaxy must be loaded."""
    c = classification
    return {"id": c.id, "workflow": c.workflow.slug, "workflow_version": c.workflow_version, "galaxy": c.galaxy.id_str,
            "annotations": [{"question": str(a["question"]), "answer": str(a["answer"])} for a in c.annotations],
            "idempotency_key": c.idempotency_key, "counted": c.counted_for_volunteer, "selection": c.selection,
            "is_simulated": c.is_simulated, "is_favourite": c.is_favourite,
            "started_at": _DATETIME.to_representation(c.started_at) if c.started_at else None,
            "finished_at": _DATETIME.to_representation(c.finished_at) if c.finished_at else None,
            "created_at": _DATETIME.to_representation(c.created_at) if c.created_at else None}


def queue_item_body(item: QueueItem) -> dict[str, Any]:
    """QueueItemSerializer's body, the galaxy as GalaxySerializer shows it (no metadata)."""
    return {"galaxy": {"id": item.galaxy_id, "id_str": item.id_str, "ra": item.ra, "dec": item.dec,
                       "survey": item.survey, "pixel_scale": item.pixel_scale,
                       "image_url": _image_url(item.image) if item.image else None,
                       "is_simulated": item.is_simulated},
            "selection": item.selection, "priority": item.priority, "classification_count": item.classification_count}


class FavouriteSerializer(serializers.Serializer):
    is_favourite = serializers.BooleanField()
