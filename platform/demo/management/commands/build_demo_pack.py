"""Rebuild the demo pack shipped in platform/demo/pack/ from ../shared/data (developers only).

    python manage.py build_demo_pack --data ../shared/data \\
        --model /path/to/encoder_supervised/best.pt --model-notes /path/to/encoder_supervised

Galaxies come only from the evaluation part of the fixed GZ2 hash split
(``classifier.splits.hash_split``), never from the part the shipped model was trained on, so
the model's metrics on the pack are hold-out figures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from django.core.management.base import BaseCommand, CommandError, CommandParser
from PIL import Image

from classifier.splits import hash_split, hash_unit
from demo import shipped_pack as pack

# (tag, rule on the Kaggle shares, how many): the mix shows every branch of the tree.
SELECTION: tuple[tuple[str, str, int], ...] = (
    ("star-or-artifact", "`Class1.3` >= 0.3", 10),
    ("edge-on", "`Class2.1` >= 0.6", 45),
    ("barred", "`Class3.1` >= 0.5", 50),
    ("spiral", "`Class4.1` >= 0.6 and `Class3.1` < 0.3", 60),
    ("odd", "`Class6.1` >= 0.6", 30),
    ("smooth", "`Class1.1` >= 0.8", 65),
    ("mixed", "index == index", 46),  # anything else: the galaxies volunteers disagree on
)
ORDER_SALT = "demo-pack"


def select_galaxies(catalog: pd.DataFrame) -> pd.DataFrame:
    """The pack's galaxies from the eval part of the split, by tag, in a fixed hashed order."""
    evaluation = catalog.iloc[hash_split(catalog["GalaxyID"].tolist())["eval"]].copy()
    evaluation["order"] = hash_unit(evaluation["GalaxyID"].tolist(), salt=ORDER_SALT)
    evaluation = evaluation.sort_values("order")
    chosen: list[pd.DataFrame] = []
    remaining = evaluation
    for tag, rule, count in SELECTION:
        picked = remaining.query(rule).head(count).assign(tag=tag)
        chosen.append(picked)
        remaining = remaining.drop(index=picked.index)
    return pd.concat(chosen).drop(columns=["order"])


class Command(BaseCommand):
    help = "Rebuild platform/demo/pack/ (images, catalogue, default model) from ../shared/data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", default="../shared/data", help="the shared data folder")
        parser.add_argument("--model", help="gz2 checkpoint to ship as the default model")
        parser.add_argument("--model-notes", help="folder with the model's train.log and metrics.json")

    def handle(self, *args, **options) -> None:
        source = Path(options["data"]) / "gz2_kaggle"
        if not (source / "catalog.csv").is_file():
            raise CommandError(f"{source / 'catalog.csv'} not found (give --data, the shared data folder)")
        catalog = pd.read_csv(source / "catalog.csv")
        selected = select_galaxies(catalog)
        images = pack.PACK_DIR / "images"
        shutil.rmtree(images, ignore_errors=True)
        images.mkdir(parents=True)
        for row in selected.itertuples():
            with Image.open(source / row.file_loc) as image:
                small = image.convert("RGB").resize((pack.IMAGE_PX, pack.IMAGE_PX), Image.LANCZOS)
                small.save(images / f"{row.GalaxyID}.jpg", quality=pack.JPEG_QUALITY)
        selected["file_loc"] = [f"images/{gid}.jpg" for gid in selected["GalaxyID"]]
        class_columns = [c for c in selected.columns if c.startswith("Class")]
        selected[["GalaxyID", "file_loc", "tag", *class_columns]].to_csv(pack.CATALOG, index=False)
        size_mb = sum(p.stat().st_size for p in images.iterdir()) / 1e6
        self.stdout.write(f"{len(selected)} galaxies ({selected['tag'].value_counts().to_dict()}), "
                          f"images {size_mb:.2f} MB -> {pack.PACK_DIR}")
        if options["model"]:
            self.ship_model(Path(options["model"]), Path(options["model_notes"] or Path(options["model"]).parent),
                            baseline=mean_share_baseline(catalog, selected))

    def ship_model(self, checkpoint: Path, notes: Path, baseline: float) -> None:
        """Copy the checkpoint, score it on the pack (its hold-out) and record both in the card."""
        from classifier.checkpoint import load_checkpoint
        from classifier.data import read_catalog
        from classifier.metrics import evaluate, format_table
        from classifier.predict import load_model

        loaded = load_checkpoint(checkpoint)  # refuses anything but tensors and plain data
        shutil.copyfile(checkpoint, pack.MODEL)
        predictor = load_model(pack.MODEL, device="cpu")
        catalog = read_catalog(pack.CATALOG, predictor.schema, pack.PACK_DIR)
        torch_seed(0)
        predictions = predictor.predict(catalog.paths, n_samples=pack.EVAL_MC_SAMPLES)
        metrics = evaluate(predictions.concentrations, catalog.counts, predictor.schema,
                           reference_shares=catalog.reference_shares, lower=predictions.lower,
                           upper=predictions.upper)
        self.stdout.write(format_table(metrics))
        train_metrics = json.loads((notes / "metrics.json").read_text()) if (notes / "metrics.json").is_file() else {}
        card = {
            "file": pack.MODEL.name, "sha256": pack.sha256_of(pack.MODEL), "bytes": pack.MODEL.stat().st_size,
            "tree": predictor.schema.name, "tree_hash": predictor.schema.version_hash,
            "architecture": loaded.architecture.to_dict(), "preprocessing": loaded.preprocessing.to_dict(),
            "train_config": loaded.train_config, "epochs": loaded.epoch,
            "trained_on": "the 'encoder' part (40%) of classifier.splits.hash_split over the 6,922 GZ2 Kaggle "
                          "galaxies of ../shared/data/gz2_kaggle (2,785 galaxies; 15% of them for validation)",
            "rebuild": pack.REBUILD_COMMAND,
            "validation_metrics": {k: train_metrics.get(k) for k in ("n_galaxies", "rmse", "rmse_kaggle")},
            "pack_metrics": metrics,
            "pack_baseline_rmse_kaggle": baseline,
            "pack_metrics_note": f"the {len(catalog.paths)} demo-pack galaxies (eval split, never trained on), "
                                 f"{pack.EVAL_MC_SAMPLES} MC-dropout samples, seed 0",
        }
        pack.MODEL_CARD.write_text(json.dumps(card, indent=1) + "\n")
        self.stdout.write(f"shipped {pack.MODEL.name} ({card['bytes'] / 1e6:.1f} MB, sha256 {card['sha256']})")


def mean_share_baseline(catalog: pd.DataFrame, selected: pd.DataFrame) -> float:
    """Kaggle RMSE on the pack of predicting every galaxy as the mean of the model's training part."""
    columns = [c for c in catalog.columns if c.startswith("Class")]
    training = catalog.iloc[hash_split(catalog["GalaxyID"].tolist())["encoder"]]
    errors = selected[columns].to_numpy() - training[columns].to_numpy().mean(axis=0)
    return float(np.sqrt(np.mean(errors**2)))


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
