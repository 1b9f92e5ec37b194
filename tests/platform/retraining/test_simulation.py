"""Simulated volunteers (the demo's seed votes) and the demo's first model."""

import random

import numpy as np
import pytest
from PIL import Image

from classifications.models import Classification, SubjectStatus
from retraining.models import ModelVersion, TrainingRun
from retraining.services import prepare_demo_model
from retraining.simulation import appearance_from_image, appearance_from_metadata, simulated_annotations

from .conftest import TINY_TRAINING, make_galaxies


def blob(tmp_path, name: str, axis_ratio: float, lopsided: bool = False) -> str:
    y, x = np.mgrid[:96, :96] - 47.5
    light = np.exp(-np.hypot(x, y / axis_ratio) / 6)
    if lopsided:
        light += 0.8 * np.exp(-np.hypot(x - 25, y - 20) / 5)
    path = tmp_path / f"{name}.png"
    Image.fromarray((255 * light / light.max()).astype(np.uint8)).save(path)
    return str(path)


def test_image_measurements_drive_the_simulated_answers(tmp_path):
    round_blob = appearance_from_image(blob(tmp_path, "round", 1.0))
    edge_on = appearance_from_image(blob(tmp_path, "flat", 0.25))
    disturbed = appearance_from_image(blob(tmp_path, "pair", 1.0, lopsided=True))
    assert round_blob.roundness > 0.9 > 0.5 > edge_on.roundness
    assert edge_on.edge_on > 0.5 > round_blob.edge_on
    assert disturbed.disturbed > round_blob.disturbed and disturbed.featured > round_blob.featured


def test_known_parameters_of_simulated_galaxies_take_precedence():
    appearance = appearance_from_metadata({"simulation": {"ellipticity": 0.8, "n_arms": 2, "sersic_n": 1.0}})
    assert appearance.roundness == pytest.approx(0.2) and appearance.spiral == 1.0
    assert appearance.edge_on == pytest.approx(0.9) and appearance.bulge == 0.0
    assert appearance_from_metadata({"survey_note": "x"}) is None


@pytest.mark.django_db
def test_simulated_walks_are_valid_for_both_shipped_trees():
    from workflows.models import Workflow

    appearance = appearance_from_metadata({"featured": 0.9, "spiral": 1.0, "ellipticity": 0.1})
    rng = random.Random(0)
    for workflow in Workflow.objects.filter(slug__in=["gz-decals-dr5", "gz2"]):
        tree = workflow.decision_tree
        walks = [simulated_annotations(tree, appearance, rng, noise=0.1) for _ in range(200)]
        for walk in walks:
            tree.validate_annotations(walk)  # raises on an invalid path
        featured = sum(w[0]["answer"].startswith("feature") for w in walks) / len(walks)
        assert featured > 0.75


@pytest.mark.django_db
def test_demo_gets_simulated_votes_and_a_first_model(decals, settings):
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


def test_volunteers_follow_the_known_answers_of_simulated_galaxies_with_noise():
    from classifier.tree import DecisionTree

    tree = DecisionTree.load("decals_dr5")
    metadata = {"simulation": {"kind": "edge-on", "axis_ratio": 0.15, "bulge_fraction": 0.3},
                "expected_answers": {"gz-decals-dr5": [
                    {"question": "smooth-or-featured", "answer": "featured-or-disk"},
                    {"question": "disk-edge-on", "answer": "yes"}, {"question": "edge-on-bulge", "answer": "rounded"},
                    {"question": "merging", "answer": "none"}]}}
    expected = {s["question"]: s["answer"] for s in metadata["expected_answers"]["gz-decals-dr5"]}
    appearance = appearance_from_metadata(metadata)
    assert appearance.edge_on == 0.95 and appearance.roundness == 0.15
    rng = random.Random(0)
    walks = [simulated_annotations(tree, appearance, rng, noise=0.2, expected=expected) for _ in range(500)]
    exact = sum(w == metadata["expected_answers"]["gz-decals-dr5"] for w in walks) / len(walks)
    assert 0.35 < exact < 0.8  # most follow the truth; noise makes some answers guesses
