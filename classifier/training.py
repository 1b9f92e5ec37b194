"""Training on vote counts: AdamW, cosine learning rate, early stopping on validation loss,
checkpoints every epoch (resumable), progress callbacks and cooperative cancellation.

The platform's retraining task calls :func:`train`; the CLI calls it too.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from classifier.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from classifier.data import (
    GalaxyDataset,
    LabelledCatalog,
    Preprocessing,
    augment_transform,
    eval_transform,
    read_catalog,
)
from classifier.losses import dirichlet_multinomial_loss
from classifier.metrics import evaluate
from classifier.models import ArchitectureConfig, DirichletModel, build_model, load_encoder_weights
from classifier.predict import mc_concentrations, resolve_device
from classifier.schema import Schema
from classifier.tree import DecisionTree

BEST_CHECKPOINT = "best.pt"
LAST_CHECKPOINT = "last.pt"

ProgressCallback = Callable[[dict[str, Any]], None]


class TrainingCancelled(RuntimeError):
    """``should_stop()`` returned True; the last completed epoch's checkpoint is kept."""


_ARCHITECTURE_DEFAULTS = ArchitectureConfig()

# Named starting points for a training run; a run names one and overrides any field.
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # A few hundred galaxies in well under two minutes on two CPU cores.
    "fast_cpu": {"image_size": 48, "epochs": 4, "batch_size": 32, "widths": (16, 32, 64, 128), "patience": 2,
                 "lr": 2e-3},
}


@dataclass
class TrainConfig:
    """How to train. The network's fields (architecture, channels, dropout, widths,
    timm_kwargs) default to :class:`ArchitectureConfig`'s, so the two cannot drift."""

    architecture: str = _ARCHITECTURE_DEFAULTS.name
    image_size: int = 64
    channels: int = _ARCHITECTURE_DEFAULTS.channels
    crop_fraction: float = 0.8
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    patience: int = 8
    val_fraction: float = 0.15
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    dropout: float = _ARCHITECTURE_DEFAULTS.dropout
    widths: tuple[int, ...] = _ARCHITECTURE_DEFAULTS.widths
    augment: bool = True
    cache_images: bool = True
    pretrained_encoder: str | None = None
    trainable_encoder_blocks: int | None = None
    eval_mc_samples: int = 5
    timm_kwargs: dict[str, Any] = field(default_factory=lambda: dict(_ARCHITECTURE_DEFAULTS.timm_kwargs))

    def __post_init__(self) -> None:
        if not 0 < self.crop_fraction <= 1:
            raise ValueError(f"crop_fraction must be in (0, 1], got {self.crop_fraction}")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The named preset (``TRAIN_PRESETS``) with ``overrides`` applied; unknown keys are ignored."""
        if name not in TRAIN_PRESETS:
            raise ValueError(f"unknown training preset '{name}' (known: {', '.join(TRAIN_PRESETS)})")
        return cls.from_dict({**TRAIN_PRESETS[name], **overrides})

    @classmethod
    def fast_cpu(cls, **overrides: Any) -> TrainConfig:
        return cls.preset("fast_cpu", **overrides)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["widths"] = list(self.widths)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "widths" in values:
            values["widths"] = tuple(values["widths"])
        return cls(**values)

    def preprocessing(self) -> Preprocessing:
        return Preprocessing.for_size(self.image_size, self.channels, self.crop_fraction)

    def architecture_config(self, n_outputs: int) -> ArchitectureConfig:
        return ArchitectureConfig(name=self.architecture, channels=self.channels, n_outputs=n_outputs,
                                  dropout=self.dropout, widths=self.widths, timm_kwargs=dict(self.timm_kwargs))


@dataclass
class TrainResult:
    checkpoint_path: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random train/validation split; at least one galaxy on each side."""
    if n < 2:
        raise ValueError("need at least 2 galaxies to train (one for validation)")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, int(round(val_fraction * n))), n - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _initial_model(schema: Schema, config: TrainConfig, init_checkpoint: Path | None) -> tuple[DirichletModel, Preprocessing]:
    if init_checkpoint is not None:
        start = load_checkpoint(init_checkpoint)
        schema.check_compatible(start.schema)
        return start.build_model(), start.preprocessing
    model = build_model(config.architecture_config(schema.n_answers))
    if config.pretrained_encoder:
        load_encoder_weights(model, config.pretrained_encoder)
    return model, config.preprocessing()


@torch.no_grad()
def _validation_loss(model: DirichletModel, dataset: GalaxyDataset, schema: Schema, preprocessing: Preprocessing,
                     batch_size: int, device: torch.device) -> float:
    model.eval()
    total, n = 0.0, 0
    for images, counts in torch.utils.data.DataLoader(dataset, batch_size=batch_size):
        concentrations = model(eval_transform(images.to(device), preprocessing))
        total += float(dirichlet_multinomial_loss(counts.to(device), concentrations, schema)) * len(images)
        n += len(images)
    return total / max(n, 1)


def train(catalog: pd.DataFrame | LabelledCatalog, *, images_dir: str | Path | None, tree: DecisionTree,
          out_dir: Path, config: TrainConfig, progress: ProgressCallback | None = None,
          init_checkpoint: Path | None = None, resume: bool = False,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train a Dirichlet CNN on vote counts and write ``best.pt`` / ``last.pt`` into ``out_dir``.

    ``catalog`` has ``id_str``, ``file_loc`` and one count column per answer (Kaggle-format
    frames are converted for the gz2 tree). ``init_checkpoint`` warm-starts from a checkpoint
    of the same tree; ``resume`` continues from ``out_dir/last.pt`` when it exists.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    schema = Schema.from_tree(tree)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    last_path = out_dir / LAST_CHECKPOINT
    resumed = load_checkpoint(last_path) if resume and last_path.is_file() else None
    if resumed is not None:
        schema.check_compatible(resumed.schema)
        model, preprocessing = resumed.build_model(), resumed.preprocessing
    else:
        model, preprocessing = _initial_model(schema, config, init_checkpoint)
    data = catalog if isinstance(catalog, LabelledCatalog) else read_catalog(catalog, schema, images_dir)
    train_idx, val_idx = split_indices(len(data.paths), config.val_fraction, config.seed)
    if config.trainable_encoder_blocks is not None:
        model.freeze_encoder_except_last(config.trainable_encoder_blocks)
    model = model.to(device).to(memory_format=torch.channels_last)

    train_set = GalaxyDataset([data.paths[i] for i in train_idx], data.counts[train_idx], preprocessing, config.cache_images)
    val_set = GalaxyDataset([data.paths[i] for i in val_idx], data.counts[val_idx], preprocessing, config.cache_images)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.lr, weight_decay=config.weight_decay)
    state = Checkpoint(schema=schema, architecture=model.config, preprocessing=preprocessing, model_state={},
                       train_config=config.to_dict())
    if resumed is not None:
        optimizer.load_state_dict(resumed.optimizer_state)
        state.history, state.epoch = resumed.history, resumed.epoch
        state.best_val_loss, state.epochs_without_improvement = resumed.best_val_loss, resumed.epochs_without_improvement

    generator = torch.Generator().manual_seed(config.seed + state.epoch)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=config.batch_size, shuffle=True, generator=generator, drop_last=len(train_set) > config.batch_size,
        num_workers=0 if config.cache_images else config.num_workers)
    report = progress or (lambda _event: None)
    started = time.monotonic()
    best_path = out_dir / BEST_CHECKPOINT

    while state.epoch < config.epochs and state.epochs_without_improvement < config.patience:
        epoch_start = time.monotonic()
        set_cosine_learning_rate(optimizer, config.lr, state.epoch, config.epochs)
        model.train()
        running, seen = 0.0, 0
        for batch_number, (images, counts) in enumerate(loader, start=1):
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"cancelled during epoch {state.epoch + 1}")
            images = images.to(device)
            inputs = augment_transform(images, preprocessing, generator) if config.augment else eval_transform(images, preprocessing)
            loss = dirichlet_multinomial_loss(counts.to(device), model(inputs), schema)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += float(loss.detach()) * len(images)
            seen += len(images)
            report({"stage": "train", "epoch": state.epoch + 1, "epochs": config.epochs, "batch": batch_number,
                    "batches": len(loader), "train_loss": running / seen, "val_loss": None})
        val_loss = _validation_loss(model, val_set, schema, preprocessing, config.batch_size, device)
        state.epoch += 1
        improved = val_loss < state.best_val_loss
        state.best_val_loss = min(val_loss, state.best_val_loss)
        state.epochs_without_improvement = 0 if improved else state.epochs_without_improvement + 1
        state.history.append({"epoch": state.epoch, "train_loss": running / max(seen, 1), "val_loss": val_loss,
                              "lr": optimizer.param_groups[0]["lr"], "seconds": time.monotonic() - epoch_start})
        state.model_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        state.optimizer_state = optimizer.state_dict()
        if improved or not best_path.is_file():
            save_checkpoint(_without_training_state(state), best_path)
        save_checkpoint(state, last_path)
        report({"stage": "epoch_end", "epoch": state.epoch, "epochs": config.epochs, "batch": len(loader),
                "batches": len(loader), "train_loss": running / max(seen, 1), "val_loss": val_loss})
        if math.isnan(val_loss):
            raise FloatingPointError(f"validation loss is NaN at epoch {state.epoch}")

    best = load_checkpoint(best_path)
    best_model = best.build_model().to(device).to(memory_format=torch.channels_last)
    val_concentrations = mc_concentrations(best_model, val_set.images if val_set.images is not None
                                           else _stack_images(val_set), preprocessing, config.eval_mc_samples, device)
    metrics = evaluate(val_concentrations, data.counts[val_idx], schema,
                       reference_shares=None if data.reference_shares is None else data.reference_shares[val_idx])
    metrics.update({"best_val_loss": state.best_val_loss, "epochs_trained": state.epoch,
                    "train_seconds": time.monotonic() - started,
                    "epoch_seconds_total": sum(h["seconds"] for h in state.history), "n_train": len(train_idx), "n_val": len(val_idx),
                    "device": str(device)})
    best.metrics, best.history = metrics, state.history
    save_checkpoint(best, best_path)
    report({"stage": "done", "epoch": state.epoch, "epochs": config.epochs, "val_loss": state.best_val_loss})
    return TrainResult(checkpoint_path=best_path, metrics=metrics, history=state.history)


def set_cosine_learning_rate(optimizer: torch.optim.Optimizer, base_lr: float, epoch: int, epochs: int) -> None:
    """Cosine decay computed from the epoch number alone, so a resumed run may change its
    epoch budget and still anneal to zero at the new end."""
    for group in optimizer.param_groups:
        group["lr"] = base_lr * 0.5 * (1 + math.cos(math.pi * epoch / max(epochs, 1)))


def _without_training_state(state: Checkpoint) -> Checkpoint:
    """The best checkpoint is for inference and warm starts: no optimizer state."""
    return Checkpoint(schema=state.schema, architecture=state.architecture, preprocessing=state.preprocessing,
                      model_state=state.model_state, train_config=state.train_config, history=list(state.history),
                      epoch=state.epoch, best_val_loss=state.best_val_loss)


def _stack_images(dataset: GalaxyDataset) -> torch.Tensor:
    return torch.stack([dataset[i][0] for i in range(len(dataset))]) if len(dataset) else torch.empty(0)
