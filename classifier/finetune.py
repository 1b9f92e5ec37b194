"""A new task from a few labelled galaxies (rings, lenses, ...), starting from a trained encoder.

A binary label becomes a one-question tree ``{label}: yes / no`` with one "vote" per galaxy,
so the same Dirichlet head, loss, MC dropout and acquisition apply unchanged; the predicted
probability of the label is the ``{label}_yes`` fraction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classifier.checkpoint import load_checkpoint
from classifier.data import FILE_COLUMN, ID_COLUMN, CatalogError, require_columns
from classifier.training import TrainConfig, TrainResult, train
from classifier.tree import DecisionTree

POSITIVE, NEGATIVE = "yes", "no"


def binary_tree(label: str) -> DecisionTree:
    return DecisionTree.from_dict({
        "name": label, "title": f"{label} (binary)", "first": label,
        "questions": [{"key": label, "text": f"Is this a {label}?",
                       "answers": [{"key": POSITIVE, "label": "Yes", "next": None},
                                   {"key": NEGATIVE, "label": "No", "next": None}]}]})


def binary_label_catalog(catalog: pd.DataFrame, label: str) -> pd.DataFrame:
    """``id_str``, ``file_loc`` and one-vote counts ``{label}_yes``/``{label}_no`` from 0/1 labels."""
    require_columns(catalog, [ID_COLUMN, FILE_COLUMN, label])
    values = pd.to_numeric(catalog[label], errors="coerce")
    labelled = values.notna()
    if not set(values[labelled].unique()) <= {0, 1}:
        raise CatalogError(f"column '{label}' must hold 0/1 labels")
    frame = catalog.loc[labelled, [ID_COLUMN, FILE_COLUMN]].copy()
    frame[f"{label}_{POSITIVE}"] = values[labelled].astype(int)
    frame[f"{label}_{NEGATIVE}"] = 1 - values[labelled].astype(int)
    return frame.reset_index(drop=True)


def sample_labelled(catalog: pd.DataFrame, label: str, n_labels: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n_labels`` galaxies drawn with both classes in proportion (stratified), and the rest."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    positives = catalog.index[catalog[label] == 1].to_numpy()
    negatives = catalog.index[catalog[label] != 1].to_numpy()
    n_pos = int(round(n_labels * len(positives) / max(len(catalog), 1)))
    chosen += list(rng.choice(positives, size=min(n_pos, len(positives)), replace=False))
    chosen += list(rng.choice(negatives, size=min(n_labels - len(chosen), len(negatives)), replace=False))
    return catalog.loc[sorted(chosen)], catalog.drop(index=chosen)


def finetune_config(encoder_checkpoint: str | Path, **overrides: Any) -> TrainConfig:
    """Settings for fine-tuning: the encoder's own architecture and preprocessing, a new head."""
    source = load_checkpoint(encoder_checkpoint)
    base = TrainConfig.from_dict(source.train_config) if source.train_config else TrainConfig()
    defaults = {"architecture": source.architecture.name, "channels": source.architecture.channels,
                "widths": source.architecture.widths, "image_size": source.preprocessing.image_size,
                "crop_fraction": source.preprocessing.crop_fraction, "pretrained_encoder": str(encoder_checkpoint),
                "trainable_encoder_blocks": 2, "epochs": 30, "batch_size": 16, "lr": 5e-4, "patience": 8,
                "val_fraction": 0.2}
    return replace(base, **{**defaults, **overrides})


def finetune(catalog: pd.DataFrame, *, label: str, images_dir: str | Path | None, encoder_checkpoint: str | Path,
             out_dir: Path, config: TrainConfig | None = None,
             progress: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train a binary ``label`` classifier from the encoder of ``encoder_checkpoint``."""
    config = config or finetune_config(encoder_checkpoint)
    return train(binary_label_catalog(catalog, label), images_dir=images_dir, tree=binary_tree(label),
                 out_dir=out_dir, config=config, progress=progress)
