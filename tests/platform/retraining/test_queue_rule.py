"""The queue's rule in one process (retraining.queue): while fewer than QUEUE_COVERAGE_LABELS
galaxies have votes, TypiClust picks on the active encoder's embeddings queue first, in pick
order — from the head refresh and from an encoder's activation — and after that the scored
galaxies queue by BALD, or by power BALD with the shared classifier rule; the rule is recorded."""

import numpy as np
import pytest

from classifications.models import SubjectStatus
from classifications.selectors import next_subjects
from classifier.acquisition_batch import queue_priorities
from classifier.coverage import typiclust
from retraining.models import Prediction, TrainingRun
from retraining.pipeline import load_embeddings
from retraining.services import activate_model_version

from .conftest import make_galaxies, seed_votes
from .test_head_refresh import head_refresh, priorities_by_galaxy, train_encoder

pytestmark = pytest.mark.django_db


def stored(version, field: str) -> dict[int, float]:
    return dict(Prediction.objects.filter(model_version=version).values_list("galaxy_id", field))


def expected_picks(workflow, encoder, rule) -> list[int]:
    """TypiClust recomputed from the recorded seed: the encoder's embeddings, the voted and
    retired galaxies labelled, as many picks as the start has labels left."""
    ids, embeddings = load_embeddings(model_version_id=encoder.pk)
    statuses = SubjectStatus.objects.filter(workflow=workflow)
    covered = set(statuses.filter(classification_count__gt=0).values_list("galaxy_id", flat=True)) | set(
        statuses.filter(retired_at__isnull=False).values_list("galaxy_id", flat=True))
    labelled = [i for i, galaxy_id in enumerate(ids) if galaxy_id in covered]
    start = rule["start"]
    n_pick = start["coverage_labels"] - start["voted"]
    return ids[typiclust(embeddings, n_pick, labelled=labelled, seed=start["seed"])].tolist()


def assert_picks_first_then(priorities: dict[int, float], picks: list[int], rest: dict[int, float]) -> None:
    order = sorted(priorities, key=priorities.get, reverse=True)
    assert order[:len(picks)] == picks  # in pick order, above every scored galaxy
    assert {k: priorities[k] for k in rest} == pytest.approx(rest)


@pytest.fixture
def new_workflow(decals, settings):
    """40 galaxies, 24 voted on, an active encoder trained on them with the start on (30 labels)."""
    settings.QUEUE_COVERAGE_LABELS = 30
    galaxies = make_galaxies(40)
    seed_votes(decals, galaxies[:24], volunteers=2)
    return galaxies, train_encoder(decals)


def test_an_encoder_activated_before_the_threshold_queues_typiclust_picks_first(decals, new_workflow):
    galaxies, encoder = new_workflow
    rule = encoder.queue_rule
    assert rule["acquisition"] == "bald" and rule["start"]["voted"] == 24 and rule["start"]["picks"] == 6
    picks = expected_picks(decals, encoder, rule)
    assert len(picks) == 6 and not set(picks) & {g.pk for g in galaxies[:24]}  # only galaxies without votes
    scores = stored(encoder, "acquisition")
    assert_picks_first_then(priorities_by_galaxy(decals), picks, {k: v for k, v in scores.items() if k not in picks})
    queue = next_subjects(workflow=decals, volunteer_key="anon:new", limit=6, random_fraction=0.0)
    assert [item.galaxy_id for item in queue] == picks
    assert "TypiClust start (6 picks first; 24 of 30 galaxies voted), then BALD" in encoder.run.log


def test_the_head_refresh_recomputes_the_start_with_the_new_votes_and_records_it(decals, new_workflow):
    galaxies, encoder = new_workflow
    first = expected_picks(decals, encoder, encoder.queue_rule)
    seed_votes(decals, [g for g in galaxies if g.pk in first[:2]], volunteers=1, seed=3)  # two picks voted on
    retired = next(g for g in galaxies[24:] if g.pk not in first)
    SubjectStatus.objects.filter(workflow=decals, galaxy=retired).update(retired_at="2026-01-01T00:00Z")

    run = head_refresh(decals)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    head = run.model_version
    assert head.is_active and head.queue_rule["start"]["voted"] == 26 and head.queue_rule["start"]["picks"] == 4
    picks = expected_picks(decals, encoder, head.queue_rule)
    assert not set(picks) & ({g.pk for g in galaxies[:24]} | set(first[:2]) | {retired.pk})
    scores = stored(head, "acquisition")
    assert_picks_first_then(priorities_by_galaxy(decals), picks, {k: v for k, v in scores.items() if k not in picks})
    assert "queue priorities updated by TypiClust start (4 picks first; 26 of 30 galaxies voted)" in run.log

    # Roll-back to the encoder restores its own stored start, and back again the head's.
    activate_model_version(model_version_id=encoder.pk)
    assert priorities_by_galaxy(decals) == pytest.approx(stored(encoder, "priority"))
    activate_model_version(model_version_id=head.pk)
    assert_picks_first_then(priorities_by_galaxy(decals), picks, {k: v for k, v in scores.items() if k not in picks})


def test_after_the_threshold_the_queue_is_bald(decals, new_workflow, settings):
    _, encoder = new_workflow
    settings.QUEUE_COVERAGE_LABELS = 24  # 24 galaxies voted: the start is over
    run = head_refresh(decals)
    head = run.model_version
    assert "start" not in head.queue_rule and head.queue_rule_summary == "BALD"
    scores = stored(head, "acquisition")
    assert stored(head, "priority") == pytest.approx(scores)
    assert {k: v for k, v in priorities_by_galaxy(decals).items() if k in scores} == pytest.approx(scores)


def test_power_bald_priorities_are_the_shared_classifier_rule(decals, new_workflow, settings):
    settings.QUEUE_COVERAGE_LABELS = 0
    settings.QUEUE_ACQUISITION, settings.QUEUE_POWER_BETA = "power-bald", 2.0
    run = head_refresh(decals)
    head = run.model_version
    assert head.queue_rule == {"acquisition": "power-bald", "beta": 2.0, "seed": run.pk}
    assert head.queue_rule_summary == "power BALD (β = 2)" and "updated by power BALD (β = 2)" in run.log
    scores = stored(head, "acquisition")
    ids = sorted(scores)
    expected = queue_priorities(np.array([scores[i] for i in ids]), rule="power-bald", beta=2.0,
                                seed=np.random.default_rng(run.pk))
    priorities = priorities_by_galaxy(decals)
    assert [priorities[i] for i in ids] == pytest.approx(expected.tolist())
    assert sorted(ids, key=priorities.get) != sorted(ids, key=scores.get)  # not the BALD order


def test_rows_stored_before_the_rule_queue_by_their_acquisition(decals, new_workflow):
    _, encoder = new_workflow
    Prediction.objects.filter(model_version=encoder).update(priority=None)
    activate_model_version(model_version_id=encoder.pk)
    assert priorities_by_galaxy(decals) == pytest.approx(stored(encoder, "acquisition"))


def test_an_encoder_under_power_bald_stores_the_shared_rule_for_every_galaxy(decals, settings):
    settings.QUEUE_ACQUISITION = "power-bald"
    seed_votes(decals, make_galaxies(20), volunteers=2)
    encoder = train_encoder(decals)
    assert encoder.queue_rule == {"acquisition": "power-bald", "beta": 1.0, "seed": encoder.run.pk}
    scores = stored(encoder, "acquisition")
    ids = sorted(scores)
    expected = queue_priorities(np.array([scores[i] for i in ids]), rule="power-bald", beta=1.0,
                                seed=np.random.default_rng(encoder.run.pk))
    assert [stored(encoder, "priority")[i] for i in ids] == pytest.approx(expected.tolist())
    assert [priorities_by_galaxy(decals)[i] for i in ids] == pytest.approx(expected.tolist())
