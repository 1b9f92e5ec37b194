from typing import Any

from rest_framework import serializers

from .models import Galaxy

# Metadata the public must not see: import bookkeeping (source file names, checksums) and a
# simulated galaxy's truth (its parameters and the answers they imply).
INTERNAL_METADATA_KEYS = frozenset({"_import", "expected_answers", "simulation", "truth"})


def public_metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The catalog's own columns (redshift, credits...): no internal key, nothing starting with '_'."""
    return {key: value for key, value in (metadata or {}).items()
            if key not in INTERNAL_METADATA_KEYS and not key.startswith("_")}


class GalaxySerializer(serializers.ModelSerializer):
    """What a volunteer is shown before answering: no metadata, since a simulated galaxy's
    metadata holds the answers its parameters imply."""

    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Galaxy
        fields = ["id", "id_str", "ra", "dec", "survey", "pixel_scale", "image_url", "is_simulated"]

    def get_image_url(self, galaxy: Galaxy) -> str | None:
        return galaxy.image.url if galaxy.image else None


class GalaxyDetailSerializer(GalaxySerializer):
    metadata = serializers.SerializerMethodField()

    class Meta(GalaxySerializer.Meta):
        fields = [*GalaxySerializer.Meta.fields, "metadata"]

    def get_metadata(self, galaxy: Galaxy) -> dict[str, Any]:
        return public_metadata(galaxy.metadata)
