"""A run taken over on another node (its own empty disk) resumes from the epoch its first
worker stored, because training's resume state goes through the storage, not a shared disk."""

import io
from datetime import timedelta

import pytest
import torch
from django.core.files.storage import default_storage
from django.utils import timezone

from core.storage import read_bytes
from retraining import runs
from retraining.models import TrainingRun
from retraining.pipeline import train_run
from retraining.runs import start_training_run

from .conftest import TINY_TRAINING, make_galaxies, seed_votes

pytestmark = pytest.mark.django_db


def test_takeover_on_another_node_resumes_from_the_stored_epoch(decals, settings, tmp_path, monkeypatch):
    seed_votes(decals, make_galaxies(20), volunteers=2)
    run = start_training_run(workflow=decals, trigger=TrainingRun.Trigger.ADMIN,
                             overrides={**TINY_TRAINING, "epochs": 3, "patience": 3})
    real_record_progress = runs.record_progress

    def lose_the_run_in_epoch_two(**kwargs):
        """The first node stops being the run's owner once epoch 1 is stored."""
        alive = real_record_progress(**kwargs)
        return alive and kwargs["progress"]["epoch"] < 2

    settings.STORAGE_CACHE_DIR, settings.RETRAIN_PROGRESS_INTERVAL = tmp_path / "node-1", 0
    monkeypatch.setattr(runs, "record_progress", lose_the_run_in_epoch_two)
    assert train_run(run_id=run.pk) is None
    first = TrainingRun.objects.get(pk=run.pk)
    assert first.status == TrainingRun.Status.RUNNING and first.attempt == 1
    stored = torch.load(io.BytesIO(read_bytes(f"models/runs/{run.pk}/last.pt")), weights_only=False)
    assert stored["epoch"] == 1  # the last epoch this node finished while it owned the run

    # That node is gone: another host, silent for longer than the heartbeat timeout.
    TrainingRun.objects.filter(pk=run.pk).update(
        worker="gone-host:1", heartbeat_at=timezone.now() - timedelta(seconds=settings.RETRAIN_HEARTBEAT_TIMEOUT + 1))
    settings.STORAGE_CACHE_DIR = tmp_path / "node-2"
    epochs_trained = []

    def spy(**kwargs):
        if kwargs["progress"].get("stage") == "epoch_end":
            epochs_trained.append(kwargs["progress"]["epoch"])
        return real_record_progress(**kwargs)

    monkeypatch.setattr(runs, "record_progress", spy)
    assert train_run(run_id=run.pk) is not None
    resumed = TrainingRun.objects.get(pk=run.pk)
    assert resumed.attempt == 2 and "resumes" in resumed.log and resumed.stage == TrainingRun.Stage.PREDICTING
    assert epochs_trained == [2, 3] and [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert not default_storage.exists(f"models/runs/{run.pk}/last.pt")  # removed once the version is stored
