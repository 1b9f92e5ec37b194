"""The demo's first model trains with the retraining tests' tiny settings."""

import pytest

from workflows.models import Workflow


@pytest.fixture
def decals(db) -> Workflow:
    return Workflow.objects.get(slug="gz-decals-dr5")


@pytest.fixture
def small_retraining(settings):
    settings.RETRAIN_AFTER_CLASSIFICATIONS = 0
    settings.RETRAIN_MIN_GALAXIES = 5
    settings.RETRAIN_PREDICT_CHUNK_SIZE = 7
    settings.RETRAIN_PREDICT_MC_SAMPLES = 3
