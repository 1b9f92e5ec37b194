"""The live queue in one process: an encoder run stores an embedding per galaxy; a head
refresh trains a Bayesian head on them and the current tallies, rescores the unretired
galaxies and swaps the priorities in one transaction; one head run at a time; a head never
uses, or replaces the scores of, another encoder's embeddings; old heads are pruned."""

import numpy as np
import pytest
from django.db import IntegrityError, transaction

from classifications.models import SubjectStatus
from classifications.selectors import next_subjects
from retraining.errors import CannotActivate, NoEmbeddings, RunAlreadyActive
from retraining.models import GalaxyEmbedding, ModelVersion, Prediction, TrainingRun
from retraining.pipeline import execute_run_inline, load_embeddings, refresh_head
from retraining.runs import maybe_start_head_refresh, start_training_run
from retraining.services import activate_model_version
from tests.platform.factories import volunteer_client

from .conftest import TINY_HEAD, TINY_TRAINING, make_galaxies, seed_votes

pytestmark = pytest.mark.django_db
HEAD = TrainingRun.Kind.HEAD


def priorities_by_galaxy(workflow) -> dict[int, float]:
    return dict(SubjectStatus.objects.filter(workflow=workflow).values_list("galaxy_id", "priority"))


def acquisition_by_galaxy(version) -> dict[int, float]:
    return dict(Prediction.objects.filter(model_version=version).values_list("galaxy_id", "acquisition"))


def train_encoder(workflow, **kwargs) -> ModelVersion:
    run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.ADMIN, overrides=TINY_TRAINING, **kwargs)
    run = execute_run_inline(run_id=run.pk, log=lambda _m: None)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    return run.model_version


def head_refresh(workflow, **overrides) -> TrainingRun:
    run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.ADMIN, kind=HEAD, overrides=overrides)
    refresh_head(run_id=run.pk)
    return TrainingRun.objects.select_related("model_version").get(pk=run.pk)


@pytest.fixture
def encoded(decals):
    """30 galaxies, 24 of them voted on, and an active encoder version with their embeddings."""
    galaxies = make_galaxies(30)
    seed_votes(decals, galaxies[:24], volunteers=2)
    return galaxies, train_encoder(decals)


def test_encoder_run_stores_one_float16_embedding_per_galaxy(decals, encoded):
    _, encoder = encoded
    assert encoder.kind == TrainingRun.Kind.ENCODER and encoder.run.kind == TrainingRun.Kind.ENCODER
    ids, vectors = load_embeddings(model_version_id=encoder.pk)
    assert sorted(ids) == sorted(SubjectStatus.objects.filter(workflow=decals).values_list("galaxy_id", flat=True))
    width = TINY_TRAINING["widths"][-1]  # the encoder's pooled features
    assert vectors.shape == (30, width) and vectors.dtype == np.float32
    assert {len(v) for v in GalaxyEmbedding.objects.values_list("vector", flat=True)} == {2 * width}
    assert np.isfinite(vectors).all() and vectors.std(axis=0).max() > 0  # galaxies differ


def test_head_refresh_rescores_and_reorders_the_queue(decals, encoded):
    galaxies, encoder = encoded
    encoder_scores = acquisition_by_galaxy(encoder)
    retired = galaxies[0]
    SubjectStatus.objects.filter(workflow=decals, galaxy=retired).update(retired_at="2026-01-01T00:00Z")

    run = head_refresh(decals)
    assert (run.kind, run.status, run.stage) == (HEAD, TrainingRun.Status.SUCCEEDED, TrainingRun.Stage.DONE), run.error
    head = run.model_version
    assert head.kind == HEAD and head.encoder == encoder and head.is_active and head.predictions_complete
    assert run.init_model_version == encoder and run.hyperparameters["config"]["members"] == TINY_HEAD["members"]
    assert run.snapshot_classifications == 48 and run.snapshot_galaxies + run.snapshot_holdout_galaxies == 24
    encoder.refresh_from_db()
    assert not encoder.is_active

    # Every unretired galaxy is rescored by the head; the queue follows the new scores.
    scores = acquisition_by_galaxy(head)
    assert set(scores) == {g.pk for g in galaxies[1:]}
    assert scores != pytest.approx({k: v for k, v in encoder_scores.items() if k in scores})
    priorities = priorities_by_galaxy(decals)
    assert {k: priorities[k] for k in scores} == pytest.approx(scores) and priorities[retired.pk] == -1.0
    queue = next_subjects(workflow=decals, volunteer_key="anon:new", limit=5, random_fraction=0.0)
    assert sorted(item.galaxy_id for item in queue) == sorted(sorted(scores, key=scores.get, reverse=True)[:5])
    prediction = Prediction.objects.filter(model_version=head).first()
    assert all(lo <= f <= hi for lo, f, hi in zip(prediction.lower, prediction.fractions, prediction.upper))

    # The head's weights are stored with their sha256; roll-back to the encoder restores its scores.
    import hashlib

    assert hashlib.sha256(head.checkpoint.read()).hexdigest() == head.checkpoint_sha256
    activate_model_version(model_version_id=encoder.pk)
    assert priorities_by_galaxy(decals) == pytest.approx(encoder_scores)
    activate_model_version(model_version_id=head.pk)
    assert {k: v for k, v in priorities_by_galaxy(decals).items() if k in scores} == pytest.approx(scores)


def test_head_refresh_writes_all_or_nothing(decals, encoded, monkeypatch):
    """Version, predictions, activation and priorities are one transaction: a failure while
    swapping the priorities leaves the old model active, the old priorities and no new version."""
    from retraining import services

    _, encoder = encoded
    before = priorities_by_galaxy(decals)

    def broken(**kwargs):
        raise RuntimeError("disk full while writing priorities")

    monkeypatch.setattr(services, "set_queue_priorities", broken)
    run = head_refresh(decals)
    assert run.status == TrainingRun.Status.FAILED and "disk full" in run.error
    assert list(ModelVersion.objects.filter(workflow=decals)) == [encoder]
    assert ModelVersion.objects.get(is_active=True) == encoder
    assert not Prediction.objects.exclude(model_version=encoder).exists()
    assert priorities_by_galaxy(decals) == before


def test_one_head_run_at_a_time_beside_an_encoder_run(decals, encoded):
    first = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN, kind=HEAD)
    with pytest.raises(RunAlreadyActive):
        start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN, kind=HEAD)
    with pytest.raises(IntegrityError), transaction.atomic():  # the database enforces it too
        TrainingRun.objects.create(workflow=decals, kind=HEAD, workflow_version=1, tree_hash=decals.tree_hash,
                                   trigger="api", status=TrainingRun.Status.RUNNING)
    # The rare encoder run is a separate kind: it may run while heads refresh.
    encoder_run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN)
    assert encoder_run.kind == TrainingRun.Kind.ENCODER and first.status == TrainingRun.Status.QUEUED


def test_head_needs_an_active_encoder_with_embeddings(decals):
    seed_votes(decals, make_galaxies(8), volunteers=1)
    with pytest.raises(NoEmbeddings) as error:
        start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN, kind=HEAD)
    assert error.value.field == "workflow" and "encoder" in error.value.message


def test_head_uses_only_the_active_encoders_embeddings(decals, encoded):
    galaxies, old = encoded
    new = train_encoder(decals)
    assert new.is_active and new.run.init_model_version == old  # warm start from the encoder
    # The new encoder lacks some galaxies' embeddings; the old one has them all.
    missing = [g.pk for g in galaxies[24:]]
    GalaxyEmbedding.objects.filter(model_version=new, galaxy_id__in=missing).delete()
    run = head_refresh(decals)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.init_model_version == new and run.model_version.encoder == new
    assert set(acquisition_by_galaxy(run.model_version)) == {g.pk for g in galaxies[:24]}
    assert all(priorities_by_galaxy(decals)[pk] == -1.0 for pk in missing)  # unscored, not old-encoder scores


def test_head_of_a_replaced_encoder_never_becomes_active(decals, encoded):
    _, old = encoded
    stale = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN, kind=HEAD)
    new = train_encoder(decals)  # activated while the head run waited in the queue
    new_scores = acquisition_by_galaxy(new)
    refresh_head(run_id=stale.pk)
    stale.refresh_from_db()
    assert stale.status == TrainingRun.Status.FAILED and f"model v{old.number}" in stale.error
    assert ModelVersion.objects.get(is_active=True) == new
    assert priorities_by_galaxy(decals) == pytest.approx(new_scores)


def test_warm_start_after_a_head_uses_the_encoder_checkpoint(decals, encoded):
    _, encoder = encoded
    assert head_refresh(decals).status == TrainingRun.Status.SUCCEEDED
    run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN, overrides=TINY_TRAINING)
    assert run.init_model_version == encoder and not run.full_retrain
    assert execute_run_inline(run_id=run.pk, log=lambda _m: None).status == TrainingRun.Status.SUCCEEDED


def test_old_heads_are_pruned_and_can_no_longer_be_activated(decals, encoded, settings):
    settings.HEAD_REFRESH_KEEP_VERSIONS = 2
    heads = [head_refresh(decals, seed=seed).model_version for seed in range(3)]
    for version in heads:
        version.refresh_from_db()
    assert [v.predictions_complete for v in heads] == [False, True, True]
    assert not Prediction.objects.filter(model_version=heads[0]).exists()
    with pytest.raises(CannotActivate):
        activate_model_version(model_version_id=heads[0].pk)
    activate_model_version(model_version_id=heads[1].pk)  # the kept ones roll back fine
    assert ModelVersion.objects.get(is_active=True) == heads[1]


def test_head_refresh_starts_after_enough_new_votes(decals, encoded, settings):
    galaxies, _ = encoded
    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 10
    seed_votes(decals, galaxies[:6], volunteers=1, seed=5)
    assert maybe_start_head_refresh(workflow_id=decals.pk) is None  # 6 new votes since the encoder's snapshot
    seed_votes(decals, galaxies[6:10], volunteers=1, seed=6)
    run = maybe_start_head_refresh(workflow_id=decals.pk)
    assert run is not None and (run.kind, run.trigger) == (HEAD, TrainingRun.Trigger.SCHEDULE)
    assert maybe_start_head_refresh(workflow_id=decals.pk) is None  # one at a time
    refresh_head(run_id=run.pk)
    assert maybe_start_head_refresh(workflow_id=decals.pk) is None  # its snapshot knows those votes
    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 0
    seed_votes(decals, galaxies, volunteers=1, seed=7)
    assert maybe_start_head_refresh(workflow_id=decals.pk) is None  # 0 disables


def test_a_burst_from_few_volunteers_does_not_refresh_the_head(decals, encoded, settings):
    galaxies, _ = encoded
    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 10
    settings.HEAD_REFRESH_MIN_DISTINCT_VOLUNTEERS = 3
    seed_votes(decals, galaxies[:10], volunteers=2, seed=5)  # 20 votes from 2 identities
    assert maybe_start_head_refresh(workflow_id=decals.pk) is None
    seed_votes(decals, galaxies[:1], volunteers=1, seed=6)  # a third volunteer
    run = maybe_start_head_refresh(workflow_id=decals.pk)
    assert run is not None and run.kind == HEAD


def test_counted_votes_schedule_the_head_check_after_commit(decals, settings, monkeypatch,
                                                             django_capture_on_commit_callbacks):
    from retraining import tasks

    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 5  # check after every classification
    scheduled = []
    monkeypatch.setattr(tasks.check_head_refresh, "apply_async", lambda args, **kwargs: scheduled.append(*args))
    galaxy = make_galaxies(1)[0]
    body = {"workflow": decals.slug, "galaxy": galaxy.id_str, "idempotency_key": "head-check-0001",
            "annotations": [{"question": "smooth-or-featured", "answer": "artifact"}]}
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert volunteer_client().post("/api/classifications/", body, format="json").status_code == 201
    assert scheduled == []  # nothing is sent inside the submit's transaction
    for callback in callbacks:
        callback()
    assert scheduled == [decals.pk]


def test_unreachable_broker_never_fails_the_vote(decals, settings, monkeypatch, django_capture_on_commit_callbacks):
    from kombu.exceptions import OperationalError

    from retraining import tasks

    def broker_down(*args, **kwargs):
        raise OperationalError("Connection refused")

    settings.HEAD_REFRESH_AFTER_CLASSIFICATIONS = 5
    monkeypatch.setattr(tasks.check_head_refresh, "apply_async", broker_down)
    galaxy = make_galaxies(1)[0]
    body = {"workflow": decals.slug, "galaxy": galaxy.id_str, "idempotency_key": "head-check-0002",
            "annotations": [{"question": "smooth-or-featured", "answer": "artifact"}]}
    with django_capture_on_commit_callbacks(execute=True):
        assert volunteer_client().post("/api/classifications/", body, format="json").status_code == 201
    assert SubjectStatus.objects.get(workflow=decals, galaxy=galaxy).classification_count == 1


def test_a_head_champion_scores_nothing_on_a_holdout_without_embeddings(decals, encoded):
    """The gate asks the champion head for galaxies its encoder never embedded (or for none, when
    a small hold-out draw is empty): it scores none, and the gate then lets the run through."""
    from retraining.pipeline import version_concentrations

    head = head_refresh(decals).model_version
    for galaxy_ids in (np.array([], dtype=np.int64), np.array([10**9], dtype=np.int64)):
        ids, concentrations = version_concentrations(head, galaxy_ids)
        assert len(ids) == 0 and concentrations.shape == (0, 1, len(head.answer_columns))
