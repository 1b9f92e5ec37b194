import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from classifier.checkpoint import load_checkpoint
from classifier.cli import main

from .conftest import TINY_TREE

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_ARGS = ["--fast", "--epochs", "1", "--image-size", "32", "--batch-size", "8"]


@pytest.fixture
def tiny_files(tiny_catalog, tmp_path):
    frame, images = tiny_catalog
    frame["ring"] = [i % 2 for i in range(len(frame))]
    catalog = tmp_path / "catalog.csv"
    frame.to_csv(catalog, index=False)
    tree = tmp_path / "tree.json"
    tree.write_text(json.dumps(TINY_TREE))
    return catalog, images, tree


@pytest.fixture
def trained(tiny_files, tmp_path):
    catalog, images, tree = tiny_files
    out = tmp_path / "run"
    assert main(["train", "--catalog", str(catalog), "--images", str(images), "--schema", str(tree),
                 "--out", str(out), "--device", "cpu", "--quiet", *TINY_ARGS]) == 0
    return out / "best.pt"


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "classifier", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, check=True)
    for command in ("train", "predict", "evaluate", "acquire", "finetune"):
        assert command in result.stdout


def test_train_predict_evaluate_acquire(tiny_files, trained, tmp_path):
    catalog, images, _ = tiny_files
    common = ["--checkpoint", str(trained), "--catalog", str(catalog), "--images", str(images), "--device", "cpu"]
    assert main(["predict", *common, "--out", str(tmp_path / "pred.csv"), "--samples", "3"]) == 0
    predictions = pd.read_csv(tmp_path / "pred.csv")
    assert len(predictions) == 24 and "arms_yes_fraction" in predictions.columns
    assert main(["evaluate", *common, "--json", str(tmp_path / "metrics.json")]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["n_galaxies"] == 24 and set(metrics["questions"]) == {"shape", "arms"}
    assert "calibration" in metrics and metrics["rmse"] is not None
    assert main(["acquire", *common, "--out", str(tmp_path / "ranked.csv")]) == 0
    ranked = pd.read_csv(tmp_path / "ranked.csv")
    assert list(ranked["rank"]) == list(range(1, 25))
    assert ranked["score"].is_monotonic_decreasing


def test_finetune_binary_label_from_few_galaxies(tiny_files, trained, tmp_path):
    catalog, images, _ = tiny_files
    out = tmp_path / "ring"
    assert main(["finetune", "--catalog", str(catalog), "--images", str(images), "--label", "ring",
                 "--checkpoint", str(trained), "--out", str(out), "--labels", "12", "--epochs", "1",
                 "--device", "cpu", "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_val"] == 12
    assert load_checkpoint(out / "best.pt").schema.tree.answer_columns == ("ring_yes", "ring_no")


def test_input_errors_exit_2_with_a_clear_message(tiny_files, tmp_path, capsys):
    catalog, images, tree = tiny_files
    broken = tmp_path / "broken.csv"
    pd.read_csv(catalog).drop(columns=["arms_no"]).to_csv(broken, index=False)
    args = ["train", "--catalog", str(broken), "--images", str(images), "--schema", str(tree), "--out", str(tmp_path / "x")]
    assert main(args) == 2
    assert "arms_no" in capsys.readouterr().err
    assert main(["train", "--catalog", str(catalog), "--images", str(tmp_path / "nowhere"), "--schema", str(tree),
                 "--out", str(tmp_path / "x")]) == 2
    assert "not found" in capsys.readouterr().err


def test_crop_fraction_reaches_the_checkpoint_and_bad_values_are_refused(tiny_files, tmp_path, capsys):
    catalog, images, tree = tiny_files
    common = ["train", "--catalog", str(catalog), "--images", str(images), "--schema", str(tree), "--device", "cpu",
              "--quiet", *TINY_ARGS]
    assert main([*common, "--out", str(tmp_path / "crop"), "--crop-fraction", "0.5"]) == 0
    preprocessing = load_checkpoint(tmp_path / "crop" / "best.pt").preprocessing
    assert preprocessing.crop_fraction == 0.5 and preprocessing.load_size == 64
    with pytest.raises(SystemExit) as refused:
        main([*common, "--out", str(tmp_path / "bad"), "--crop-fraction", "1.5"])
    assert refused.value.code == 2 and "--crop-fraction: must be in (0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_compact_widths_reach_the_architecture(tiny_files, tmp_path, capsys):
    catalog, images, tree = tiny_files
    common = ["train", "--catalog", str(catalog), "--images", str(images), "--schema", str(tree), "--device", "cpu",
              "--quiet", *TINY_ARGS]
    assert main([*common, "--out", str(tmp_path / "wide"), "--widths", "8,16,24,40"]) == 0
    assert load_checkpoint(tmp_path / "wide" / "best.pt").architecture.widths == (8, 16, 24, 40)
    with pytest.raises(SystemExit):
        main([*common, "--out", str(tmp_path / "bad"), "--widths", "8,wide"])
    assert "--widths: must be comma-separated channel counts" in capsys.readouterr().err
