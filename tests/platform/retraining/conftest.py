"""Helpers for the retraining tests: galaxies whose images differ, simulated votes that follow
the image (bright → smooth), and a training configuration that takes seconds on a CPU."""

import io
import random
import uuid

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from classifications.services import Submission, ensure_subject_statuses, submit_classification
from classifications.volunteers import Volunteer
from tests.platform.factories import GalaxyFactory
from workflows.models import Workflow

TINY_TRAINING = {"epochs": 2, "image_size": 16, "widths": [8, 16], "batch_size": 16, "eval_mc_samples": 2,
                 "patience": 2}
# A deep ensemble small enough to train in well under a second.
TINY_HEAD = {"members": 4, "hidden": 16, "steps": 60}
# The pipeline's tests are about training, prediction and activation, not about whether a tiny
# model trained for seconds beats the last one: their gate lets every new version through (the
# figures are still computed and recorded). test_gate.py tests the gate at its real margin.
GATE_OPEN = 1e6
SMOOTH = [{"question": "smooth-or-featured", "answer": "smooth"}, {"question": "how-rounded", "answer": "round"},
          {"question": "merging", "answer": "none"}]
FEATURED = [{"question": "smooth-or-featured", "answer": "featured-or-disk"},
            {"question": "disk-edge-on", "answer": "yes"}, {"question": "edge-on-bulge", "answer": "none"},
            {"question": "merging", "answer": "none"}]


def galaxy_image(brightness: int, seed: int) -> ContentFile:
    rng = random.Random(seed)
    image = Image.new("RGB", (24, 24), (brightness // 4,) * 3)
    for _ in range(40):
        image.putpixel((rng.randrange(24), rng.randrange(24)), (brightness, brightness, rng.randrange(256)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return ContentFile(buffer.getvalue(), name=f"{uuid.uuid4().hex}.png")


def make_galaxies(n: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    galaxies = [GalaxyFactory(image=galaxy_image(rng.randrange(30, 255), seed * 1000 + i)) for i in range(n)]
    ensure_subject_statuses()
    return galaxies


def simulated_answer(galaxy, rng: random.Random) -> list[dict[str, str]]:
    """Bright galaxies read as smooth, faint ones as featured, with 20% noise."""
    from PIL import Image as PILImage

    with PILImage.open(galaxy.image.path) as image:
        bright = image.convert("L").getextrema()[1] > 140
    return SMOOTH if bright != (rng.random() < 0.2) else FEATURED


def seed_votes(workflow: Workflow, galaxies, volunteers: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    for v in range(volunteers):
        for galaxy in galaxies:
            submit_classification(submission=Submission(workflow_slug=workflow.slug, galaxy_id_str=galaxy.id_str,
                                                        annotations=simulated_answer(galaxy, rng),
                                                        idempotency_key=uuid.uuid4().hex),
                                  volunteer=Volunteer.anonymous(f"sim-{seed}-{v}"), is_simulated=True)


@pytest.fixture
def decals(db) -> Workflow:
    return Workflow.objects.get(slug="gz-decals-dr5")


@pytest.fixture(autouse=True)
def _retraining_settings(settings):
    settings.RETRAIN_AFTER_CLASSIFICATIONS = 0
    settings.ACTIVATION_MAX_LOSS_INCREASE = GATE_OPEN
    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 0
    settings.RETRAIN_MIN_DISTINCT_VOLUNTEERS = settings.HEAD_REFRESH_MIN_DISTINCT_VOLUNTEERS = 1
    settings.HEAD_REFRESH_CONFIG = TINY_HEAD
    settings.RETRAIN_MIN_GALAXIES = 5
    settings.RETRAIN_PREDICT_CHUNK_SIZE = 7
    settings.RETRAIN_PREDICT_MC_SAMPLES = 3
    # These tests check priorities against the BALD scores; test_queue_rule.py (and the worker
    # test of the live queue) turn the budget-aware start on.
    settings.QUEUE_COVERAGE_LABELS = 0
