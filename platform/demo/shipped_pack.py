"""The demo pack shipped in ``platform/demo/pack/``: real SDSS galaxies with their real
Galaxy Zoo 2 votes (as published for the Kaggle Galaxy Challenge) and the default gz2 model.
See pack/README.md for provenance; ``manage.py build_demo_pack`` rebuilds it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from classifier.kaggle import kaggle_to_counts
from classifier.schema import Schema
from classifier.tree import DecisionTree

PACK_DIR = Path(__file__).resolve().parent / "pack"
CATALOG = PACK_DIR / "catalog.csv"
MODEL = PACK_DIR / "gz2_default.pt"
MODEL_CARD = PACK_DIR / "gz2_default.json"
IMAGE_PX = 160  # of the 260 px SDSS crops: the model sees the central half, resized to 64 px
JPEG_QUALITY = 85
EVAL_MC_SAMPLES = 5
ID_PREFIX = "GZ2K-"  # id_str = prefix + Kaggle GalaxyID
SURVEY = "SDSS (Galaxy Zoo 2 votes, Kaggle Galaxy Challenge)"
PIXEL_SCALE = 0.396 * 424 / IMAGE_PX * 260 / 424  # SDSS 0.396"/px; 424 px originals, 260 px centre crops
REBUILD_COMMAND = (
    "python -m classifier train --catalog gz2_encoder.csv --images ../shared/data/gz2_kaggle --schema gz2 "
    "--out encoder_supervised --epochs 18 --image-size 64 --crop-fraction 0.5 --batch-size 64 --lr 0.002 "
    "--patience 6 --seed 0 --device cpu   # gz2_encoder.csv: the 'encoder' part of "
    "classifier.splits.hash_split(catalog.GalaxyID); then manage.py build_demo_pack --model encoder_supervised/best.pt")


@dataclass(frozen=True)
class PackGalaxy:
    id_str: str
    image_path: Path
    tag: str
    counts: dict[str, int]  # answer column -> round(40 x Kaggle value)
    kaggle_galaxy_id: int


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def galaxies(tree: DecisionTree) -> list[PackGalaxy]:
    """The pack's galaxies with vote counts for ``tree`` (the gz2 tree: the Kaggle columns)."""
    frame = pd.read_csv(CATALOG)
    counts = kaggle_to_counts(frame, Schema.from_tree(tree))
    columns = list(tree.answer_columns)
    return [PackGalaxy(id_str=f"{ID_PREFIX}{gid}", image_path=PACK_DIR / loc, tag=tag,
                       counts={c: int(v) for c, v in zip(columns, row, strict=True)}, kaggle_galaxy_id=int(gid))
            for gid, loc, tag, row in zip(frame["GalaxyID"], frame["file_loc"], frame["tag"],
                                          counts[columns].to_numpy(), strict=True)]


def model_card() -> dict[str, Any]:
    """The shipped model's provenance and its metrics on the pack; checks its sha256."""
    card = json.loads(MODEL_CARD.read_text())
    if sha256_of(MODEL) != card["sha256"]:
        raise RuntimeError(f"{MODEL} does not match the sha256 recorded in {MODEL_CARD.name}")
    return card

