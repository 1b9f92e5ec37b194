"""factory_boy factories for the platform's models."""

import io
import uuid

import factory
from django.core.files.base import ContentFile
from PIL import Image

from galaxies.models import Galaxy


def png_bytes(size: int = 16, colour: tuple[int, int, int] = (40, 30, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG")
    return buffer.getvalue()


class GalaxyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Galaxy

    id_str = factory.Sequence(lambda n: f"J{n:06d}.00+000000.0")
    ra = factory.Faker("pyfloat", min_value=0, max_value=359.9)
    dec = factory.Faker("pyfloat", min_value=-89.9, max_value=89.9)
    survey = "test"
    image = factory.LazyFunction(lambda: ContentFile(png_bytes(), name=f"{uuid.uuid4().hex}.png"))


def decals_smooth_path() -> list[dict[str, str]]:
    return [{"question": "smooth-or-featured", "answer": "smooth"},
            {"question": "how-rounded", "answer": "round"},
            {"question": "merging", "answer": "none"}]


def volunteer_client(anonymous_id: str | None = None):
    """An API client holding an anonymous volunteer identity, as the classify page obtains one
    from POST /api/volunteers/anonymous/ (a new volunteer unless ``anonymous_id`` is given)."""
    from rest_framework.test import APIClient

    from classifications.volunteers import COOKIE_NAME, token_for

    client = APIClient()
    client.cookies[COOKIE_NAME] = token_for(anonymous_id or uuid.uuid4().hex)
    return client
