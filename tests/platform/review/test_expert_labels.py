"""Expert labels put to use: the gold-standard metrics of every model version, the volunteers'
agreement with the experts per question, and expert votes in training at a run's weight
(through the hook the review app registers; retraining never imports review)."""

import io

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from rest_framework.test import APIClient

from classifications.models import SubjectStatus
from core.storage import read_bytes
from retraining.models import TrainingRun
from retraining.pipeline import SPLIT_COLUMN, TRAIN, build_snapshot, execute_run_inline, head_training_set
from retraining.runs import start_training_run
from review import selectors
from review.services import record_expert_classification
from tests.platform.retraining.conftest import FEATURED, SMOOTH, TINY_TRAINING, make_galaxies, seed_votes

from .conftest import make_version, predict, uniform_fractions, vote

pytestmark = pytest.mark.django_db
SMOOTH_ROUND = [{"question": "smooth-or-featured", "answer": "smooth"}, {"question": "how-rounded", "answer": "round"},
                {"question": "merging", "answer": "none"}]


def expert(name: str):
    return get_user_model().objects.create_user(name, f"{name}@example.org", "pw-12345678")


def label(workflow, galaxy, annotations, who) -> None:
    record_expert_classification(workflow=workflow, galaxy=galaxy, expert_id=who.pk, annotations=annotations)


def question(rows, key):
    return next(q for q in rows if q["question"] == key)


def test_gold_standard_accuracy_per_question_and_version(workflow, scored):
    """v1 predicts 'smooth' for galaxies 0–1 and 'featured' for 2; v2 predicts 'smooth' for all."""
    galaxies, v1 = scored["galaxies"], scored["version"]
    smooth, featured = "smooth-or-featured_smooth", "smooth-or-featured_featured-or-disk"
    for i in range(3):
        v1.predictions.filter(galaxy=galaxies[i]).update(fractions=uniform_fractions(
            workflow, **({smooth: 0.8, featured: 0.1} if i < 2 else {smooth: 0.1, featured: 0.8})))
    v2 = make_version(workflow, number=2, active=False)
    for galaxy in galaxies[:3]:
        predict(v2, galaxy, fractions=uniform_fractions(workflow, **{smooth: 0.7, featured: 0.2}))
    a, b = expert("ann"), expert("ben")
    label(workflow, galaxies[0], SMOOTH_ROUND, a)
    label(workflow, galaxies[1], SMOOTH_ROUND, a)
    label(workflow, galaxies[2], FEATURED, a)
    label(workflow, galaxies[2], SMOOTH_ROUND, b)  # two experts disagree on galaxy 2

    first = selectors.expert_metrics(workflow=workflow, version=v1)
    assert first["n_labels"] == 4
    assert question(first["questions"], "smooth-or-featured") == {"question": "smooth-or-featured", "n": 4,
                                                                  "accuracy": 0.75}
    second = selectors.expert_metrics(workflow=workflow, version=v2)
    assert question(second["questions"], "smooth-or-featured")["accuracy"] == 0.75  # 3 of 4 said smooth
    assert question(first["questions"], "disk-edge-on")["n"] == 1  # only the FEATURED label reaches it

    # Cached per label state: a revised label shows at once.
    label(workflow, galaxies[2], SMOOTH_ROUND, a)
    assert question(selectors.expert_metrics(workflow=workflow, version=v1)["questions"],
                    "smooth-or-featured")["accuracy"] == 0.5
    summary = next(v for v in selectors.model_summaries(workflow=workflow) if v["number"] == 1)
    assert summary["expert"]["n_answers"] > 0


def test_volunteer_agreement_with_experts(workflow, scored):
    galaxies = scored["galaxies"]
    a = expert("ann")
    vote(workflow, galaxies[0], SMOOTH_ROUND, 3)
    vote(workflow, galaxies[0], FEATURED, 1)  # majority smooth: agrees
    vote(workflow, galaxies[1], FEATURED, 2)  # majority featured: disagrees
    vote(workflow, galaxies[2], SMOOTH_ROUND, 1)
    vote(workflow, galaxies[2], FEATURED, 1)  # a tie: no majority
    for galaxy in galaxies[:4]:  # galaxy 3 has no votes: not counted
        label(workflow, galaxy, SMOOTH_ROUND, a)
    rows = selectors.volunteer_agreement(workflow=workflow)
    assert question(rows, "smooth-or-featured")["n"] == 3
    assert question(rows, "smooth-or-featured")["agreement"] == pytest.approx(1 / 3)
    assert question(rows, "how-rounded") == {**question(rows, "how-rounded"), "n": 2, "agreement": 1.0}


def test_agreement_api_is_aggregate_only(workflow, scored, users):
    label(workflow, scored["galaxies"][0], SMOOTH_ROUND, users["scientist"])
    vote(workflow, scored["galaxies"][0], SMOOTH_ROUND, 2)
    client = APIClient()
    client.force_authenticate(users["scientist"])
    body = client.get(reverse("review-expert-agreement", args=[workflow.slug])).json()
    assert set(body) == {"workflow", "questions"}
    assert {frozenset(q) for q in body["questions"]} == {frozenset({"question", "text", "n", "agreement"})}


@pytest.fixture
def labelled(workflow, settings):
    """Voted galaxies with images; one training galaxy and one hold-out galaxy carry an expert label."""
    settings.RETRAIN_HOLDOUT_FRACTION = 0.3
    galaxies = make_galaxies(16)
    seed_votes(workflow, galaxies[:12], volunteers=2)
    keys = dict(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", "random_key"))
    train = next(g for g in galaxies[:12] if keys[g.pk] >= 0.3)
    held = next(g for g in galaxies[:12] if keys[g.pk] < 0.3)
    unvoted = next(g for g in galaxies[12:] if keys[g.pk] >= 0.3)
    who = expert("eve")
    for galaxy in (train, held, unvoted):
        label(workflow, galaxy, SMOOTH, who)
    return {"train": train, "held": held, "unvoted": unvoted}


def snapshot_counts(frame: pd.DataFrame, galaxy) -> dict[str, int]:
    row = frame[frame["id_str"] == galaxy.id_str]
    return row.iloc[0].drop(["id_str", "file_loc", SPLIT_COLUMN]).to_dict() if len(row) else {}


def test_a_run_with_expert_weight_trains_on_the_expert_votes(workflow, labelled, settings):
    settings.RETRAIN_AFTER_CLASSIFICATIONS = settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 0
    settings.RETRAIN_MIN_GALAXIES = 3
    settings.RETRAIN_PREDICT_MC_SAMPLES = 2
    volunteers, _ = build_snapshot(workflow=workflow, holdout_fraction=0.3)  # weight 0: volunteers only
    run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.API, overrides=TINY_TRAINING, expert_weight=3)
    run = execute_run_inline(run_id=run.pk, log=lambda _m: None)
    assert run.status == TrainingRun.Status.SUCCEEDED and run.expert_weight == 3, run.error
    trained = pd.read_csv(io.BytesIO(read_bytes(run.snapshot_file)))  # exactly what training read
    before, after = snapshot_counts(volunteers, labelled["train"]), snapshot_counts(trained, labelled["train"])
    expected = {c: n + (3 if c in {"smooth-or-featured_smooth", "how-rounded_round", "merging_none"} else 0)
                for c, n in before.items()}
    assert after == expected and after != before
    assert snapshot_counts(trained, labelled["held"]) == snapshot_counts(volunteers, labelled["held"])  # yardstick kept
    assert not snapshot_counts(volunteers, labelled["unvoted"])
    assert trained[trained["id_str"] == labelled["unvoted"].id_str][SPLIT_COLUMN].tolist() == [TRAIN]

    ids, counts, holdout, _ = head_training_set(workflow=workflow, expert_weight=3)
    plain_ids, plain, _, _ = head_training_set(workflow=workflow)
    column = list(workflow.decision_tree.answer_columns).index("smooth-or-featured_smooth")
    row = list(ids).index(labelled["train"].pk)
    assert counts[row, column] == plain[list(plain_ids).index(labelled["train"].pk), column] + 3
    assert labelled["unvoted"].pk in ids and labelled["unvoted"].pk not in plain_ids
