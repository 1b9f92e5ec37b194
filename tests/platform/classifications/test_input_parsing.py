"""The hot paths' shortcuts must agree with what they replace: the submit body's plain-input
check with ClassificationInputSerializer on every body it accepts (anything it declines goes
through the serializer), the queue's image URLs with the storage's url()."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifications.serializers import (
    _IMAGE_STORAGE,
    ClassificationInputSerializer,
    _image_url,
    _plain_classification_input,
)
from tests.platform.factories import decals_smooth_path

FRONTEND_BODY = {"workflow": "gz-decals-dr5", "galaxy": "J000001.00+000000.0", "annotations": decals_smooth_path(),
                 "idempotency_key": "0b6f3f0e-8d1c-4b8e-9a53-3f1d3c0f6a10", "started_at": "2026-03-01T10:00:00.123Z",
                 "finished_at": "2026-03-01T10:00:04.500Z", "selection": "priority"}

TRICKY = ["gz-decals-dr5", "gz 2", " gz2", "gz2\n", "gz2 ", "\tJ1-key-1234", "", "short", "k" * 8, "k" * 7,
          "k" * 100, "k" * 101, "J1+2", "é-key-123", "null\x00byte-key", "\ud800lonely-key", "2026-03-01T10:00:00Z",
          "2026-03-01 10:00", "2026-13-01T10:00:00", "2026-03-01T10:00:00+05:30", "2026-03-01T10:00:00", "2026-03-01",
          "priority", "random", "direct", "PRIORITY", 12345678, 1.5, None, True, [], {}, ["priority"]]
FIELDS = ["workflow", "galaxy", "annotations", "idempotency_key", "started_at", "finished_at", "selection"]
texts = st.one_of(st.sampled_from(TRICKY), st.text(max_size=12), st.integers())
bodies = st.dictionaries(st.sampled_from(["workflow", "galaxy", "annotations", "idempotency_key", "started_at",
                                          "finished_at", "selection", "extra"]), texts)


def agree(body) -> bool:
    plain = _plain_classification_input(body)
    if plain is None:
        return False
    serializer = ClassificationInputSerializer(data=body)
    assert serializer.is_valid(), (body, serializer.errors)
    assert plain == dict(serializer.validated_data), body
    return True


def test_the_frontend_body_takes_the_plain_path_and_agrees():
    assert agree(FRONTEND_BODY)
    assert agree({key: value for key, value in FRONTEND_BODY.items() if key not in ("started_at", "selection")})
    assert agree({**FRONTEND_BODY, "annotations": None, "started_at": None})


def test_every_tricky_value_in_every_field_validates_the_same():
    accepted = 0
    for field in FIELDS:
        for value in TRICKY:
            accepted += agree({**FRONTEND_BODY, field: value})
        accepted += agree({key: v for key, v in FRONTEND_BODY.items() if key != field})
    assert 20 < accepted < len(FIELDS) * (len(TRICKY) + 1)


@settings(max_examples=400, deadline=None)
@given(body=bodies)
def test_any_body_the_shortcut_accepts_validates_the_same(body):
    agree(body)


@settings(max_examples=200, deadline=None)
@given(changes=bodies)
def test_changed_frontend_bodies_validate_the_same(changes):
    agree({**FRONTEND_BODY, **changes})


@pytest.mark.parametrize("name", ["galaxies/J1.png", "galaxies/a..b.png", "galaxies/a b.png", "galaxies/../x.png",
                                  "./x.png", "a//b.png", "/abs.png", "galaxies/é.png", "galaxies/a?b#c.png",
                                  "http:x.png", "galaxies/100%.png"])
def test_image_urls_are_the_storage_urls(name):
    assert _image_url(name) == _IMAGE_STORAGE.url(name)
