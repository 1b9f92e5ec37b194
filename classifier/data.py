"""Catalogs of vote counts -> validated frames -> image tensors with augmentation.

Images are decoded once, resized to ``load_size`` and kept as uint8 tensors; augmentation
(random rotation, flip, zoom/crop, small shift) then runs batched on the training device as
one affine resampling, which is what keeps two CPU cores busy with the network rather than
with JPEG decoding. Evaluation uses the same resampling with a fixed central crop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from classifier.schema import Schema

ID_COLUMN = "id_str"
FILE_COLUMN = "file_loc"
# Zoobot-style columns that share a question prefix but are not vote counts.
NON_COUNT_SUFFIXES = ("_fraction", "_total-votes", "_proportion", "_lower", "_upper")


class CatalogError(ValueError):
    """The catalog cannot be used with this schema (missing or unknown columns, bad values)."""


class ImageLoadError(OSError):
    """An image file is missing or cannot be decoded."""


@dataclass
class Preprocessing:
    """Image pipeline settings (stored in checkpoints so prediction matches training).

    ``crop_fraction`` is the central fraction of the stored image the network sees at
    evaluation; training zooms around it by ``± zoom_jitter`` (relative).
    """

    image_size: int = 64
    channels: int = 3
    load_size: int = 80
    crop_fraction: float = 0.8
    zoom_jitter: float = 0.1
    shift_jitter: float = 0.05
    mean: float = 0.2
    std: float = 0.25

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        return cls(**data)

    @classmethod
    def for_size(cls, image_size: int, channels: int = 3, crop_fraction: float = 0.8) -> Preprocessing:
        """Load at the resolution the crop needs, so resampling is roughly 1:1."""
        return cls(image_size=image_size, channels=channels, crop_fraction=crop_fraction,
                   load_size=int(math.ceil(image_size / crop_fraction)))


# ---------------------------------------------------------------- catalogs
def resolve_paths(catalog: pd.DataFrame, images_dir: str | Path | None) -> pd.Series:
    """``file_loc`` made absolute (relative paths are taken from ``images_dir``)."""
    base = Path(images_dir) if images_dir is not None else None

    def resolve(loc: Any) -> str:
        path = Path(str(loc))
        if not path.is_absolute() and base is not None:
            path = base / path
        return str(path)

    return catalog[FILE_COLUMN].map(resolve)


def check_images_exist(paths: Sequence[str]) -> None:
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        shown = ", ".join(missing[:3])
        raise ImageLoadError(f"{len(missing)} image file(s) not found, e.g. {shown}")


def count_matrix(catalog: pd.DataFrame, schema: Schema) -> np.ndarray:
    """Validated ``(G, A)`` float32 vote counts in schema order.

    Every answer column must be present (a missing column is an error, never "0 votes");
    NaN means no votes. Columns that look like counts for a question of this schema but
    name an unknown answer are rejected, so typos cannot silently drop votes.
    """
    missing = [c for c in schema.tree.answer_columns if c not in catalog.columns]
    if missing:
        raise CatalogError(f"catalog lacks {len(missing)} count column(s) of schema '{schema.name}': "
                           f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
    known = set(schema.tree.answer_columns)
    for column in catalog.columns:
        name = str(column)
        if name in known or name.endswith(NON_COUNT_SUFFIXES):
            continue
        question = next((q for q in schema.tree.question_keys if name.startswith(q + "_")), None)
        if question is not None:
            answers = schema.tree.question(question).answer_keys
            raise CatalogError(f"count column '{name}' is not in schema '{schema.name}' "
                               f"(question '{question}' has answers {', '.join(answers)})")
    values = catalog[list(schema.tree.answer_columns)].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & catalog[list(schema.tree.answer_columns)].notna()
    if bad.any().any():
        column = bad.any()[lambda s: s].index[0]
        raise CatalogError(f"column '{column}' has non-numeric vote counts")
    counts = values.fillna(0.0).to_numpy(dtype=np.float32)
    if (counts < 0).any():
        raise CatalogError("vote counts must be non-negative")
    return counts


def require_columns(catalog: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in catalog.columns]
    if missing:
        raise CatalogError(f"catalog lacks required column(s): {', '.join(missing)}")


# ---------------------------------------------------------------- images
def load_image(path: str | Path, preprocessing: Preprocessing) -> torch.Tensor:
    """Decode, convert to greyscale/colour and resize to ``load_size``: uint8 ``(C, L, L)``."""
    size = preprocessing.load_size
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG DCT scaling: much faster decode
            mode = "L" if preprocessing.channels == 1 else "RGB"
            image = image.convert(mode).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            array = np.array(image, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise ImageLoadError(f"cannot read image {path}: {exc}") from exc
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(array))


def load_images(paths: Sequence[str | Path], preprocessing: Preprocessing, threads: int = 2) -> torch.Tensor:
    """Decode many images (PIL releases the GIL while decoding, so threads help)."""
    size, channels = preprocessing.load_size, preprocessing.channels
    out = torch.empty((len(paths), channels, size, size), dtype=torch.uint8)
    if not paths:
        return out
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for i, tensor in enumerate(pool.map(lambda p: load_image(p, preprocessing), paths)):
            out[i] = tensor
    return out


def _affine_batch(images: torch.Tensor, scale: torch.Tensor, angle: torch.Tensor, flip: torch.Tensor,
                  shift: torch.Tensor, preprocessing: Preprocessing) -> torch.Tensor:
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], dim=1),
                         torch.stack([sin * flip, cos, shift[:, 1]], dim=1)], dim=1)
    size = preprocessing.image_size
    grid = F.affine_grid(theta, [images.shape[0], images.shape[1], size, size], align_corners=False)
    pixels = images.float().div_(255.0)
    out = F.grid_sample(pixels, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.sub_(preprocessing.mean).div_(preprocessing.std).contiguous(memory_format=torch.channels_last)


DIHEDRAL_VIEWS = 8


def eval_transform(images: torch.Tensor, preprocessing: Preprocessing, view: int = 0) -> torch.Tensor:
    """Deterministic central crop + resize of uint8 ``(B, C, L, L)`` -> normalised float.

    ``view`` 0–7 picks one of the eight symmetries of the square (rotation by ``view % 4``
    quarter turns, mirrored for ``view >= 4``): a galaxy's morphology does not depend on how
    the camera was oriented, so averaging over views is test-time augmentation."""
    if not 0 <= view < DIHEDRAL_VIEWS:
        raise ValueError(f"view must be in 0..{DIHEDRAL_VIEWS - 1}, got {view}")
    n, device = images.shape[0], images.device
    ones = torch.ones(n, device=device)
    angle = torch.full((n,), (view % 4) * math.pi / 2, device=device)
    flip = -ones if view >= 4 else ones
    return _affine_batch(images, ones * preprocessing.crop_fraction, angle, flip,
                         torch.zeros(n, 2, device=device), preprocessing)


def augment_transform(images: torch.Tensor, preprocessing: Preprocessing,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Random rotation (any angle), horizontal flip, zoom and shift, batched."""
    n, device = images.shape[0], images.device

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    scale = preprocessing.crop_fraction * (1 + preprocessing.zoom_jitter * (2 * uniform(n) - 1))
    angle = 2 * math.pi * uniform(n)
    flip = torch.where(uniform(n) < 0.5, -1.0, 1.0)
    shift = preprocessing.shift_jitter * (2 * uniform(n, 2) - 1)
    return _affine_batch(images, scale, angle, flip, shift, preprocessing)


class GalaxyDataset(torch.utils.data.Dataset):
    """uint8 images (decoded lazily, or all at once with ``cache=True``) and vote counts."""

    def __init__(self, paths: Sequence[str], counts: np.ndarray | None, preprocessing: Preprocessing,
                 cache: bool = True, threads: int = 2):
        self.paths = list(paths)
        self.counts = torch.as_tensor(counts if counts is not None else np.zeros((len(self.paths), 0)),
                                      dtype=torch.float32)
        self.preprocessing = preprocessing
        self.images = load_images(self.paths, preprocessing, threads) if cache else None

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index] if self.images is not None else load_image(self.paths[index], self.preprocessing)
        return image, self.counts[index]


@dataclass
class LabelledCatalog:
    """A validated catalog: ids, absolute image paths, counts in schema order and, for
    Kaggle-format input, the original Kaggle values (the challenge metric's ground truth)."""

    frame: pd.DataFrame
    paths: list[str]
    counts: np.ndarray | None
    reference_shares: np.ndarray | None = None

    def subset(self, index: np.ndarray) -> LabelledCatalog:
        return LabelledCatalog(
            frame=self.frame.iloc[index].reset_index(drop=True), paths=[self.paths[i] for i in index],
            counts=None if self.counts is None else self.counts[index],
            reference_shares=None if self.reference_shares is None else self.reference_shares[index])


def read_catalog(source: str | Path | pd.DataFrame, schema: Schema, images_dir: str | Path | None = None, *,
                 fmt: str = "auto", require_counts: bool = True, check_files: bool = True,
                 votes_per_galaxy: int = 40) -> LabelledCatalog:
    """Read and validate a catalog (CSV path or DataFrame) in Zoobot (``fmt='zoobot'``) or
    Kaggle (``fmt='kaggle'``) format; ``auto`` detects Kaggle by its ``GalaxyID``/``ClassN.i`` columns."""
    from classifier import kaggle

    if isinstance(source, pd.DataFrame):
        frame = source.copy()
    else:
        try:
            frame = pd.read_csv(source)
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise CatalogError(f"cannot read catalog {source}: {exc}") from exc
    if fmt not in {"auto", "zoobot", "kaggle"}:
        raise CatalogError(f"unknown catalog format '{fmt}'")
    reference = None
    if fmt == "kaggle" or (fmt == "auto" and kaggle.is_kaggle_catalog(frame)):
        try:
            reference = kaggle.kaggle_shares(frame, schema)
            frame = kaggle.kaggle_to_counts(frame, schema, votes_per_galaxy)
        except kaggle.KaggleFormatError as exc:
            raise CatalogError(str(exc)) from exc
    require_columns(frame, [ID_COLUMN, FILE_COLUMN])
    frame = frame.reset_index(drop=True)
    frame[ID_COLUMN] = frame[ID_COLUMN].astype(str)
    paths = list(resolve_paths(frame, images_dir))
    if check_files:
        check_images_exist(paths)
    counts = count_matrix(frame, schema) if require_counts else None
    return LabelledCatalog(frame=frame, paths=paths, counts=counts, reference_shares=reference)
