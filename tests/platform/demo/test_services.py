"""The demo's seed votes from simulated volunteers and its first model."""

import numpy as np
import pytest

from classifications.models import Classification, SubjectStatus
from demo import shipped_pack
from demo.services import load_demo_galaxies, prepare_demo_model
from retraining.models import GalaxyEmbedding, ModelVersion, Prediction, TrainingRun
from retraining.pipeline import execute_run_inline
from retraining.runs import start_training_run
from tests.platform.retraining.conftest import TINY_TRAINING, make_galaxies
from workflows.models import Workflow
from workflows.shipped import GZ2


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


@pytest.mark.django_db
def test_gz2_demo_starts_on_the_shipped_model_and_real_vote_simulations(settings, small_retraining):
    gz2 = Workflow.objects.get(slug=GZ2)
    load_demo_galaxies()
    version = prepare_demo_model(workflow=gz2, log=lambda _m: None)
    assert isinstance(version, ModelVersion) and version.is_active and version.run is None
    assert version.checkpoint_sha256 == shipped_pack.model_card()["sha256"]
    assert version.metrics["n_galaxies"] == 300 and version.metrics["rmse_kaggle"] < 0.15
    assert not TrainingRun.objects.filter(workflow=gz2).exists()  # nothing trained at start-up
    statuses = SubjectStatus.objects.filter(workflow=gz2)
    predictions: dict[str, list[float]] = {}
    for p in Prediction.objects.filter(model_version=version).select_related("galaxy"):
        predictions.setdefault(p.galaxy.metadata["pack_tag"], []).append(p.fractions[0])  # P(smooth)
    assert sum(map(len, predictions.values())) == statuses.count() == 300
    # The posterior differs from galaxy to galaxy and agrees with the crowd.
    assert np.mean(predictions["smooth"]) > 0.7 > 0.3 > np.mean(predictions["spiral"])
    assert statuses.filter(priority__gte=0).count() == 300  # the queue follows the model's scores
    # Every galaxy's embedding is stored with the shipped version, so the live head can refresh.
    assert GalaxyEmbedding.objects.filter(model_version=version).count() == 300

    # Simulated volunteers answered from each galaxy's real votes.
    votes = Classification.objects.filter(workflow=gz2)
    assert votes.count() > 500 and not votes.filter(is_simulated=False).exists()
    first = [(v.galaxy.metadata["pack_tag"], v.annotations[0]["answer"]) for v in votes.select_related("galaxy")]
    smooth_share = np.mean([a == "smooth" for tag, a in first if tag == "smooth"])
    spiral_share = np.mean([a == "smooth" for tag, a in first if tag == "spiral"])
    assert smooth_share > 0.8 and spiral_share < 0.2

    # The Retrain button still works: a warm start from the shipped model on the simulated votes.
    run = start_training_run(workflow=gz2, trigger=TrainingRun.Trigger.ADMIN, overrides={"epochs": 1})
    run = execute_run_inline(run_id=run.pk, log=lambda _m: None)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.init_model_version == version
    # The champion/challenger gate compared it with the shipped model on the same hold-out galaxies
    # and votes: activated only if not worse (a 1-epoch retrain on simulated votes usually is worse
    # and waits for review; the shipped model then keeps the queue).
    assert run.gate_champion == version and run.gate_galaxies >= 2
    assert run.model_version.is_active is (run.gate_challenger_loss <= run.gate_champion_loss)
    assert ModelVersion.objects.get(workflow=gz2, is_active=True) == (run.model_version if run.model_version.is_active
                                                                     else version)
