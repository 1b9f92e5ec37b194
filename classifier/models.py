"""Encoders with a Dirichlet head whose dropout can stay on at prediction time.

``compact`` is a small VGG-style CNN that trains usefully on two CPU cores at 64–128 px;
any other architecture name is a timm model (``efficientnet_b0``, ``convnext_nano``...),
always created with ``pretrained=False`` — weights only ever come from a local file.
Dropout lives only in the head, so MC dropout can run the encoder once and the head T times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

COMPACT = "compact"


@dataclass
class ArchitectureConfig:
    """Everything needed to rebuild the network (stored in checkpoints)."""

    name: str = COMPACT
    channels: int = 3
    n_outputs: int = 0
    dropout: float = 0.25
    widths: tuple[int, ...] = (32, 64, 128, 256)
    timm_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["widths"] = list(self.widths)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArchitectureConfig:
        data = dict(data)
        data["widths"] = tuple(data.get("widths", cls.widths))
        return cls(**data)


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class CompactEncoder(nn.Sequential):
    """Stem conv + pool, then (conv, conv, pool) stages, global average pool.

    Each stage is one child so that fine-tuning can unfreeze "the last k blocks".
    """

    def __init__(self, channels: int, widths: tuple[int, ...]):
        stages: list[nn.Module] = [nn.Sequential(*_conv_bn_relu(channels, widths[0]), nn.MaxPool2d(2))]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            stages.append(nn.Sequential(*_conv_bn_relu(c_in, c_out), *_conv_bn_relu(c_out, c_out), nn.MaxPool2d(2)))
        stages.append(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        super().__init__(*stages)
        self.num_features = widths[-1]


class DirichletHead(nn.Module):
    """Dropout + linear layer -> concentrations ``α = 1 + 100·sigmoid(x)`` in (1, 101)."""

    def __init__(self, n_features: int, n_outputs: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(n_features, n_outputs)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return 1.0 + 100.0 * torch.sigmoid(self.linear(self.dropout(features)))


class DirichletModel(nn.Module):
    def __init__(self, encoder: nn.Module, head: DirichletHead, config: ArchitectureConfig):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.config = config

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))

    @property
    def dropout_only_in_head(self) -> bool:
        return not any(isinstance(m, nn.Dropout) and m.p > 0 for m in self.encoder.modules())

    def enable_mc_dropout(self) -> None:
        """Evaluation mode (frozen batch-norm statistics) with dropout still sampling."""
        self.eval()
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.train()

    def encoder_blocks(self) -> list[nn.Module]:
        """The encoder as an ordered list of blocks (stages of timm models expanded)."""
        blocks: list[nn.Module] = []
        for name, child in self.encoder.named_children():
            if name in {"blocks", "stages", "layers"} and isinstance(child, nn.Sequential):
                blocks.extend(child.children())
            elif any(True for _ in child.parameters()):
                blocks.append(child)
        return blocks

    def freeze_encoder_except_last(self, n_trainable_blocks: int) -> None:
        """Freeze the encoder apart from its last ``n_trainable_blocks`` blocks (head stays trainable)."""
        blocks = self.encoder_blocks()
        keep = blocks[len(blocks) - n_trainable_blocks:] if n_trainable_blocks > 0 else []
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        for block in keep:
            for p in block.parameters():
                p.requires_grad_(True)


def _build_encoder(config: ArchitectureConfig) -> tuple[nn.Module, int]:
    if config.name == COMPACT:
        encoder = CompactEncoder(config.channels, config.widths)
        return encoder, encoder.num_features
    import timm  # imported lazily: the compact model needs no timm

    kwargs = {"drop_rate": 0.0, "drop_path_rate": 0.0, **config.timm_kwargs}
    encoder = timm.create_model(config.name, pretrained=False, num_classes=0, in_chans=config.channels, **kwargs)
    return encoder, encoder.num_features


def build_model(config: ArchitectureConfig) -> DirichletModel:
    if config.n_outputs <= 0:
        raise ValueError("ArchitectureConfig.n_outputs must be the number of answers")
    encoder, n_features = _build_encoder(config)
    return DirichletModel(encoder, DirichletHead(n_features, config.n_outputs, config.dropout), config)


def _adapt_first_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """Greyscale <-> colour: sum (or repeat) the input-channel weights, preserving the response."""
    if weight.shape[1] == channels:
        return weight
    summed = weight.sum(dim=1, keepdim=True)
    return summed if channels == 1 else summed.repeat(1, channels, 1, 1) / channels


def load_encoder_weights(model: DirichletModel, path: str | Path) -> list[str]:
    """Load encoder weights from a local file: one of our checkpoints (its encoder part), or a
    plain state dict of the same timm model (classifier layers ignored). Returns missing keys.
    Loaded with ``weights_only``: tensors and plain data only, never code."""
    blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(blob, Mapping) and "model_state" in blob:
        state = {k.removeprefix("encoder."): v for k, v in blob["model_state"].items() if k.startswith("encoder.")}
    else:
        state = blob.get("state_dict", blob) if isinstance(blob, Mapping) else blob
    own = model.encoder.state_dict()
    usable = {}
    for key, value in state.items():
        if key not in own:
            continue
        if value.ndim == 4 and own[key].ndim == 4 and value.shape[1] != own[key].shape[1]:
            value = _adapt_first_conv(value, own[key].shape[1])
        if value.shape == own[key].shape:
            usable[key] = value
    if not usable:
        raise ValueError(f"{path}: no encoder weights match architecture '{model.config.name}'")
    result = model.encoder.load_state_dict(usable, strict=False)
    return list(result.missing_keys)
