"""Frozen encoder -> one float32 embedding per galaxy (the heavy tier of the two-tier model).

The encoder runs once per galaxy and model version; the Bayesian heads
(:mod:`classifier.heads`) then retrain in seconds on the stored ``(G, D)`` arrays, so the
queue can follow the votes without touching images. Embeddings average the encoder's
features over dihedral views (rotations/flips): morphology does not depend on orientation,
and the average is a cheap test-time augmentation that the head never has to learn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from classifier.checkpoint import load_checkpoint
from classifier.data import DIHEDRAL_VIEWS, Preprocessing, eval_transform, load_images
from classifier.models import CompactEncoder
from classifier.ssl import SSL_FORMAT

EMBEDDINGS_FILE = "embeddings.npy"
IDS_FILE = "ids.json"


@dataclass
class FrozenEncoder:
    """An encoder in evaluation mode and the preprocessing its inputs need."""

    encoder: nn.Module
    preprocessing: Preprocessing
    source: str

    @property
    def dim(self) -> int:
        return int(self.encoder.num_features)


def load_encoder(path: str | Path) -> FrozenEncoder:
    """The encoder of a classifier checkpoint (``python -m classifier train``) or of a
    self-supervised encoder file (:func:`classifier.ssl.train_ssl_encoder`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder file not found: {path}")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(blob, dict) and blob.get("format") == SSL_FORMAT:
        encoder = CompactEncoder(3, tuple(blob["widths"]))
        encoder.load_state_dict(blob["encoder_state"])
        preprocessing = Preprocessing.from_dict(blob["preprocessing"])
    else:
        checkpoint = load_checkpoint(path)
        encoder = checkpoint.build_model().encoder
        preprocessing = checkpoint.preprocessing
    return FrozenEncoder(encoder.eval(), preprocessing, str(path))


def random_encoder(widths: Sequence[int] = (32, 64, 128, 256), *, image_size: int = 64,
                   crop_fraction: float = 0.5, seed: int = 0) -> FrozenEncoder:
    """The control: the same compact CNN with random weights (batch-norm at its initial
    statistics), so any gain of a trained encoder is measured against architecture alone."""
    torch.manual_seed(seed)
    return FrozenEncoder(CompactEncoder(3, tuple(widths)).eval(),
                         Preprocessing.for_size(image_size, 3, crop_fraction), f"random(seed={seed})")


@torch.no_grad()
def encode_images(frozen: FrozenEncoder, images: torch.Tensor, *, views: int = 1,
                  batch_size: int = 256) -> np.ndarray:
    """uint8 images ``(G, C, L, L)`` decoded with ``frozen.preprocessing`` -> ``(G, D)`` float32,
    averaged over the first ``views`` of the 8 dihedral views."""
    if not 1 <= views <= DIHEDRAL_VIEWS:
        raise ValueError(f"views must be in 1..{DIHEDRAL_VIEWS}, got {views}")
    frozen.encoder.eval()
    out = np.empty((len(images), frozen.dim), dtype=np.float32)
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        features = sum(frozen.encoder(eval_transform(chunk, frozen.preprocessing, view)) for view in range(views))
        out[start:start + len(chunk)] = (features / views).numpy()
    return out


def encode_paths(frozen: FrozenEncoder, paths: Sequence[str | Path], *, views: int = 1,
                 load_chunk: int = 1024) -> np.ndarray:
    """Decode and encode image files in chunks (bounded memory): ``(G, D)`` float32."""
    parts = [encode_images(frozen, load_images([str(p) for p in paths[s:s + load_chunk]], frozen.preprocessing),
                           views=views) for s in range(0, len(paths), load_chunk)]
    return np.concatenate(parts) if parts else np.zeros((0, frozen.dim), dtype=np.float32)


def save_embeddings(directory: str | Path, ids: Sequence[str], embeddings: np.ndarray) -> Path:
    """``embeddings.npy`` (float32, row i = ``ids[i]``) and ``ids.json`` in ``directory``."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(ids):
        raise ValueError(f"need one row per id: {embeddings.shape} for {len(ids)} ids")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np.save(directory / EMBEDDINGS_FILE, embeddings)
    (directory / IDS_FILE).write_text(json.dumps([str(i) for i in ids]))
    return directory


def load_embeddings(directory: str | Path) -> tuple[list[str], np.ndarray]:
    directory = Path(directory)
    return json.loads((directory / IDS_FILE).read_text()), np.load(directory / EMBEDDINGS_FILE)
