from rest_framework import serializers

from .models import Galaxy


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
    class Meta(GalaxySerializer.Meta):
        fields = [*GalaxySerializer.Meta.fields, "metadata"]
