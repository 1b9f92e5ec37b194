"""The demo's seed votes from simulated volunteers and its first model."""

import pytest

from classifications.models import Classification, SubjectStatus
from demo.services import prepare_demo_model
from retraining.models import ModelVersion, TrainingRun
from tests.platform.retraining.conftest import TINY_TRAINING, make_galaxies


@pytest.mark.django_db
def test_demo_gets_simulated_votes_and_a_first_model(decals, settings, small_retraining):
    settings.RETRAIN_DEMO_OVERRIDES = TINY_TRAINING
    make_galaxies(30)
    run = prepare_demo_model(workflow=decals, log=lambda _m: None)
    assert run.status == TrainingRun.Status.SUCCEEDED and run.trigger == TrainingRun.Trigger.DEMO, run.error
    votes = Classification.objects.filter(workflow=decals)
    assert votes.exists() and not votes.filter(is_simulated=False).exists()
    assert run.snapshot_simulated_classifications == run.snapshot_classifications == votes.count()
    assert not SubjectStatus.objects.filter(workflow=decals, retired_at__isnull=False).exists()
    assert ModelVersion.objects.get(workflow=decals, is_active=True).run == run
    assert prepare_demo_model(workflow=decals, log=lambda _m: None) is None  # already has a model
