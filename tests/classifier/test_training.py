import numpy as np
import pytest
import torch

from classifier.checkpoint import load_checkpoint
from classifier.data import CatalogError
from classifier.schema import SchemaMismatchError
from classifier.training import LAST_CHECKPOINT, TrainConfig, TrainingCancelled, split_indices, train
from classifier.tree import load_tree

TINY = {"image_size": 32, "widths": (8, 16, 32), "batch_size": 8}


def test_train_writes_a_self_describing_checkpoint_and_reports_progress(tiny_catalog, tiny_tree, tmp_path):
    frame, images = tiny_catalog
    events = []
    result = train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "run",
                   config=TrainConfig.fast_cpu(epochs=2, **TINY), progress=events.append)
    assert [h["epoch"] for h in result.history] == [1, 2]
    batches = [e for e in events if e["stage"] == "train"]
    assert batches[0]["batch"] == 1 and batches[0]["batches"] == batches[-1]["batch"]
    assert {"epoch", "epochs", "batch", "batches", "train_loss", "val_loss"} <= set(batches[0])
    assert [e["epoch"] for e in events if e["stage"] == "epoch_end"] == [1, 2]
    checkpoint = load_checkpoint(result.checkpoint_path)
    assert checkpoint.schema.tree.to_dict() == tiny_tree.to_dict()
    assert checkpoint.architecture.name == "compact" and checkpoint.preprocessing.image_size == 32
    assert checkpoint.metrics["n_val"] + checkpoint.metrics["n_train"] == 24
    assert checkpoint.metrics["rmse"] == result.metrics["rmse"]
    assert checkpoint.optimizer_state is None
    assert (tmp_path / "run" / LAST_CHECKPOINT).is_file()


def test_learns_round_versus_disk_images(tiny_catalog, tiny_tree, tmp_path):
    """Synthetic round blobs get 'round' votes, elongated ones 'disk': a few epochs must beat chance."""
    frame, images = tiny_catalog
    more = frame.sample(n=96, replace=True, random_state=0).reset_index(drop=True)
    result = train(more, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "run",
                   config=TrainConfig.fast_cpu(epochs=6, lr=3e-3, val_fraction=0.25, patience=6, **TINY))
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.metrics["questions"]["shape"]["accuracy"] >= 0.8


def test_resume_continues_from_the_last_epoch(tiny_catalog, tiny_tree, tmp_path):
    frame, images = tiny_catalog
    out = tmp_path / "run"
    train(frame, images_dir=images, tree=tiny_tree, out_dir=out, config=TrainConfig.fast_cpu(epochs=1, **TINY))
    resumed = train(frame, images_dir=images, tree=tiny_tree, out_dir=out, resume=True,
                    config=TrainConfig.fast_cpu(epochs=2, **TINY))
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert resumed.history[1]["lr"] == pytest.approx(0.5 * TrainConfig.fast_cpu().lr)  # cosine, half-way
    assert load_checkpoint(out / LAST_CHECKPOINT).epoch == 2


def test_should_stop_cancels_and_keeps_the_finished_epoch(tiny_catalog, tiny_tree, tmp_path):
    frame, images = tiny_catalog
    calls = []

    def stop_in_second_epoch():
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(TrainingCancelled):
        train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "run", should_stop=stop_in_second_epoch,
              config=TrainConfig.fast_cpu(epochs=3, **TINY))
    assert load_checkpoint(tmp_path / "run" / LAST_CHECKPOINT).epoch == 1


def test_warm_start_needs_the_same_tree(tiny_catalog, tiny_tree, tmp_path):
    frame, images = tiny_catalog
    first = train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "a",
                  config=TrainConfig.fast_cpu(epochs=1, **TINY))
    warm = train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "b", init_checkpoint=first.checkpoint_path,
                 config=TrainConfig.fast_cpu(epochs=1, lr=1e-9, **TINY))
    before = load_checkpoint(first.checkpoint_path).model_state["head.linear.weight"]
    after = load_checkpoint(warm.checkpoint_path).model_state["head.linear.weight"]
    assert torch.allclose(before, after, atol=1e-6)
    with pytest.raises(SchemaMismatchError):
        train(frame, images_dir=images, tree=load_tree("gz2"), out_dir=tmp_path / "c",
              init_checkpoint=first.checkpoint_path, config=TrainConfig.fast_cpu(epochs=1, **TINY))


def test_missing_count_column_is_refused(tiny_catalog, tiny_tree, tmp_path):
    frame, images = tiny_catalog
    with pytest.raises(CatalogError):
        train(frame.drop(columns=["shape_artifact"]), images_dir=images, tree=tiny_tree, out_dir=tmp_path,
              config=TrainConfig.fast_cpu(**TINY))


def test_split_is_reproducible_and_disjoint():
    train_idx, val_idx = split_indices(50, 0.2, seed=3)
    assert len(val_idx) == 10 and not set(train_idx) & set(val_idx)
    np.testing.assert_array_equal(val_idx, split_indices(50, 0.2, seed=3)[1])
    with pytest.raises(ValueError):
        split_indices(1, 0.2, seed=0)


def test_config_round_trips_and_fast_cpu_is_small():
    config = TrainConfig.fast_cpu(seed=7)
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.image_size <= 64 and config.epochs <= 5 and config.seed == 7


def test_named_presets_take_overrides_and_unknown_names_are_refused():
    assert TrainConfig.preset("fast_cpu", epochs=2, widths=[8, 16]) == TrainConfig.fast_cpu(epochs=2, widths=(8, 16))
    assert TrainConfig.preset("default") == TrainConfig()
    with pytest.raises(ValueError, match="unknown training preset 'huge'.*fast_cpu"):
        TrainConfig.preset("huge")


def test_network_defaults_are_the_architecture_config_ones():
    from classifier.models import ArchitectureConfig

    assert TrainConfig().architecture_config(n_outputs=7) == ArchitectureConfig(n_outputs=7)
