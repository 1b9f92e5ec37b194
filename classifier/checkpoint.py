"""Checkpoint files: weights + schema (the tree document) + architecture + preprocessing +
metrics, so that a file alone is enough to predict, evaluate or resume."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from classifier.data import Preprocessing
from classifier.models import ArchitectureConfig, DirichletModel, build_model
from classifier.schema import Schema

FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    schema: Schema
    architecture: ArchitectureConfig
    preprocessing: Preprocessing
    model_state: dict[str, torch.Tensor]
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0
    optimizer_state: dict[str, Any] | None = None
    best_val_loss: float = float("inf")
    epochs_without_improvement: int = 0

    def build_model(self) -> DirichletModel:
        model = build_model(self.architecture)
        model.load_state_dict(self.model_state)
        return model

    def to_blob(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION, "schema": self.schema.to_dict(),
            "architecture": self.architecture.to_dict(), "preprocessing": self.preprocessing.to_dict(),
            "model_state": self.model_state, "metrics": self.metrics, "train_config": self.train_config,
            "history": self.history, "epoch": self.epoch, "optimizer_state": self.optimizer_state,
            "best_val_loss": self.best_val_loss,
            "epochs_without_improvement": self.epochs_without_improvement,
        }


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> Path:
    """Write atomically (temporary file + rename): a crash never leaves a half-written checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(checkpoint.to_blob(), tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    # weights_only: a checkpoint holds tensors and plain data only, so loading one never runs
    # code from the file (a pickled object is refused with UnpicklingError).
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or "schema" not in blob or "model_state" not in blob:
        raise ValueError(f"{path} is not a classifier checkpoint")
    return Checkpoint(
        schema=Schema.from_dict(blob["schema"]),
        architecture=ArchitectureConfig.from_dict(blob["architecture"]),
        preprocessing=Preprocessing.from_dict(blob["preprocessing"]),
        model_state=blob["model_state"], metrics=blob.get("metrics", {}),
        train_config=blob.get("train_config", {}), history=blob.get("history", []),
        epoch=blob.get("epoch", 0), optimizer_state=blob.get("optimizer_state"), best_val_loss=blob.get("best_val_loss", float("inf")),
        epochs_without_improvement=blob.get("epochs_without_improvement", 0))
