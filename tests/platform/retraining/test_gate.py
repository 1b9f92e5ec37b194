"""The champion/challenger gate: the decision rule, and runs of both kinds through it — the
figures are both models' loss on the challenger's hold-out with the same votes, a worse version
waits for review without touching the queue, a head is judged against its encoder (so a held
head does not stop the next refresh), and activating a waiting version by hand works."""

import io

import numpy as np
import pandas as pd
import pytest
import torch

from classifications.models import SubjectStatus
from classifier.heads import mixture_nll
from classifier.predict import load_model
from classifier.schema import Schema
from core.storage import local_copy, read_bytes
from galaxies.models import Galaxy
from retraining.gate import GateFigures, decide
from retraining.models import ModelVersion, Prediction, TrainingRun
from retraining.pipeline import HOLDOUT, SPLIT_COLUMN, _posterior, _read_images, execute_run_inline, refresh_head
from retraining.runs import maybe_start_head_refresh, start_training_run
from retraining.services import activate_model_version

from .conftest import TINY_TRAINING, make_galaxies, seed_votes

pytestmark = pytest.mark.django_db
HEAD = TrainingRun.Kind.HEAD
# Requires a loss ≤ 0: every real model fails it (a negative log-probability of votes is > 0),
# so a run is held back whatever the tiny model learned.
HOLD_EVERYTHING = -1.0


@pytest.mark.parametrize(("figures", "margin", "activate"), [
    (GateFigures(champion_id=None), 0.0, True),  # the first model
    (GateFigures(champion_id=1, challenger_loss=10.0, champion_loss=10.0, n_galaxies=5), 0.0, True),  # tie
    (GateFigures(champion_id=1, challenger_loss=10.01, champion_loss=10.0, n_galaxies=5), 0.0, False),
    (GateFigures(champion_id=1, challenger_loss=10.01, champion_loss=10.0, n_galaxies=5), 0.002, True),
    (GateFigures(champion_id=1, challenger_loss=10.03, champion_loss=10.0, n_galaxies=5), 0.002, False),
    (GateFigures(champion_id=1, challenger_loss=9.0, champion_loss=10.0, n_galaxies=5), 0.0, True),
    (GateFigures(champion_id=1, challenger_loss=99.0, champion_loss=1.0, n_galaxies=1), 0.0, True),  # no evidence
])
def test_decision_rule(figures, margin, activate):
    assert decide(figures, margin=margin).activate is activate


def run_encoder(workflow) -> TrainingRun:
    run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.ADMIN, overrides=TINY_TRAINING)
    return execute_run_inline(run_id=run.pk, log=lambda _m: None)


def priorities(workflow) -> dict[int, float]:
    return dict(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", "priority"))


@pytest.fixture
def voted(decals, settings):
    settings.RETRAIN_HOLDOUT_FRACTION = 0.3  # ~7 of 24 voted galaxies: enough to compare on
    galaxies = make_galaxies(30)
    seed_votes(decals, galaxies[:24], volunteers=2)
    return galaxies


def test_first_run_activates_and_records_no_champion(decals, voted, settings):
    settings.ACTIVATION_MAX_LOSS_INCREASE = HOLD_EVERYTHING
    run = run_encoder(decals)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.gate_decision == TrainingRun.Gate.ACTIVATED and run.gate_champion is None
    assert run.model_version.is_active and "no champion" in run.gate_reason


def test_champion_loss_is_on_the_challengers_holdout_with_the_same_votes(decals, voted):
    first = run_encoder(decals).model_version
    seed_votes(decals, voted[:24], volunteers=1, seed=7)  # the hold-out's votes change after v1 trained
    run = run_encoder(decals)
    assert run.gate_decision == TrainingRun.Gate.ACTIVATED and run.gate_champion == first
    assert run.gate_galaxies == run.snapshot_holdout_galaxies >= 2

    # Recompute v1's loss independently: its posterior on run 2's frozen hold-out, run 2's counts.
    frame = pd.read_csv(io.BytesIO(read_bytes(run.snapshot_file)))
    held = frame[frame[SPLIT_COLUMN] == HOLDOUT].sort_values("id_str")
    held = held.assign(pk=held["id_str"].map(dict(Galaxy.objects.values_list("id_str", "pk")))).sort_values("pk")
    images = _read_images(list(Galaxy.objects.filter(pk__in=list(held["pk"])).order_by("pk")
                               .values_list("image", flat=True)))
    torch.manual_seed(0)
    predictor = load_model(local_copy(first.checkpoint.name, sha256=first.checkpoint_sha256), device="cpu")
    concentrations = _posterior(predictor, images).concentrations
    counts = held[list(decals.decision_tree.answer_columns)].to_numpy(dtype=np.float64)
    expected = float(mixture_nll(concentrations, counts, Schema(decals.decision_tree)).mean())
    assert run.gate_champion_loss == pytest.approx(expected, abs=1e-4)
    assert run.gate_challenger_loss is not None and run.gate_challenger_loss != run.gate_champion_loss


def test_a_worse_version_waits_for_review_and_a_person_activates_it(decals, voted, settings, django_user_model):
    first = run_encoder(decals).model_version
    before = priorities(decals)
    settings.ACTIVATION_MAX_LOSS_INCREASE = HOLD_EVERYTHING
    run = run_encoder(decals)
    waiting = run.model_version
    assert (run.status, run.stage) == (TrainingRun.Status.SUCCEEDED, TrainingRun.Stage.DONE)
    assert run.gate_decision == TrainingRun.Gate.AWAITING_REVIEW and "worse than" in run.gate_reason
    assert run.gate_champion == first and run.gate_challenger_loss > 0 and run.gate_champion_loss > 0
    first.refresh_from_db()
    assert first.is_active and not waiting.is_active and waiting.predictions_complete
    assert priorities(decals) == before  # the queue still follows v1

    scientist = django_user_model.objects.create_user("judge", "judge@example.org", "pw-12345678")
    activated = activate_model_version(model_version_id=waiting.pk, activated_by_id=scientist.pk)
    assert activated.is_active and activated.activated_by == scientist
    scores = dict(Prediction.objects.filter(model_version=waiting).values_list("galaxy_id", "acquisition"))
    assert priorities(decals) == pytest.approx(scores)


def test_heads_are_judged_against_their_encoder_and_a_held_head_does_not_stop_the_next(decals, voted, settings):
    encoder = run_encoder(decals).model_version
    first = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN, kind=HEAD)
    refresh_head(run_id=first.pk)
    first.refresh_from_db()
    assert first.gate_decision == TrainingRun.Gate.ACTIVATED and first.model_version.is_active
    assert first.gate_champion == encoder

    # The second head is compared with the encoder again, not with the head now active.
    settings.ACTIVATION_MAX_LOSS_INCREASE = HOLD_EVERYTHING
    second = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN, kind=HEAD)
    refresh_head(run_id=second.pk)
    second.refresh_from_db()
    assert second.status == TrainingRun.Status.SUCCEEDED, second.error
    assert second.gate_champion == encoder and second.gate_decision == TrainingRun.Gate.AWAITING_REVIEW
    assert ModelVersion.objects.get(workflow=decals, is_active=True) == first.model_version
    assert "awaits review" in second.log

    # Votes keep counting from the held head's snapshot: the next refresh starts as usual.
    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 5
    seed_votes(decals, voted[:5], volunteers=1, seed=11)
    assert maybe_start_head_refresh(workflow_id=decals.pk) is not None


def test_a_gate_that_cannot_compute_fails_the_run_and_keeps_the_champion(decals, voted, monkeypatch):
    from retraining import pipeline

    first = run_encoder(decals).model_version
    before = priorities(decals)

    def broken(version, galaxy_ids):
        raise OSError("champion checkpoint unreadable")

    monkeypatch.setattr(pipeline, "version_concentrations", broken)
    run = run_encoder(decals)
    assert run.status == TrainingRun.Status.FAILED and "champion checkpoint unreadable" in run.error
    assert ModelVersion.objects.get(workflow=decals, is_active=True) == first and priorities(decals) == before
