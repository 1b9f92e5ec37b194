"""Self-supervised encoder on unlabelled images (SimCLR, losses and heads from ``lightly``).

Images are free and votes are scarce: the encoder can learn from every imported image before
any vote exists. SimCLR (Chen et al. 2020) pulls two augmented views of the same galaxy
together and pushes other galaxies apart. The augmentations are the ones morphology must not
depend on — any rotation, flips, zoom and shift (``classifier.data.augment_transform``) — plus
brightness/contrast jitter and pixel noise, so the encoder cannot match views by exposure.
``lightly`` supplies the NT-Xent loss and projection head (kept library code instead of a
hand-written contrastive loss); the backbone is the same compact CNN the supervised path uses,
so embeddings from either are drop-in for ``classifier.heads``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from classifier.data import Preprocessing, augment_transform
from classifier.models import CompactEncoder

SSL_FORMAT = "ssl-encoder-v1"


@dataclass
class SSLConfig:
    widths: tuple[int, ...] = (32, 64, 128, 256)
    image_size: int = 64
    crop_fraction: float = 0.5
    zoom_jitter: float = 0.25
    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    projection_dim: int = 64
    brightness_jitter: float = 0.3
    noise_std: float = 0.1
    seed: int = 0

    def preprocessing(self) -> Preprocessing:
        base = Preprocessing.for_size(self.image_size, 3, self.crop_fraction)
        return replace(base, zoom_jitter=self.zoom_jitter)


def _photometric_jitter(views: torch.Tensor, config: SSLConfig, generator: torch.Generator) -> torch.Tensor:
    n = views.shape[0]
    gain = 1 + config.brightness_jitter * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)
    offset = 0.5 * config.brightness_jitter * (2 * torch.rand(n, 1, 1, 1, generator=generator) - 1)
    noise = config.noise_std * torch.randn(views.shape, generator=generator)
    return views * gain + offset + noise


def train_ssl_encoder(images: torch.Tensor, *, config: SSLConfig, out_path: Path,
                      progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train on uint8 images ``(N, 3, L, L)`` (decoded with ``config.preprocessing()``) and save
    the encoder to ``out_path`` (see :func:`classifier.embeddings.load_encoder`). Returns the history."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead

    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    preprocessing = config.preprocessing()
    encoder = CompactEncoder(3, config.widths)
    projector = SimCLRProjectionHead(encoder.num_features, encoder.num_features, config.projection_dim)
    criterion = NTXentLoss(temperature=config.temperature)
    params = list(encoder.parameters()) + list(projector.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(images) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    history: list[dict[str, Any]] = []
    step = 0
    for epoch in range(config.epochs):
        started = time.monotonic()
        encoder.train()
        projector.train()
        order = torch.randperm(len(images), generator=generator)
        running = 0.0
        for b in range(steps_per_epoch):
            batch = images[order[b * config.batch_size:(b + 1) * config.batch_size]]
            for group in optimizer.param_groups:
                group["lr"] = config.lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))
            views = [_photometric_jitter(augment_transform(batch, preprocessing, generator), config, generator)
                     for _ in range(2)]
            loss = criterion(projector(encoder(views[0])), projector(encoder(views[1])))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            running += float(loss.detach())
            step += 1
        history.append({"epoch": epoch + 1, "loss": running / steps_per_epoch, "seconds": time.monotonic() - started})
        if progress is not None:
            progress(history[-1])
    save_ssl_encoder(encoder, config, out_path, history)
    return {"history": history}


def save_ssl_encoder(encoder: nn.Module, config: SSLConfig, path: Path, history: list[dict[str, Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config_dict = asdict(config)
    config_dict["widths"] = list(config.widths)
    torch.save({"format": SSL_FORMAT, "encoder_state": {k: v.detach().cpu() for k, v in encoder.state_dict().items()},
                "widths": list(config.widths), "preprocessing": config.preprocessing().to_dict(),
                "config": config_dict, "history": history}, path)
    return path
