"""Tiny synthetic galaxies (32 px PNGs) and a two-question tree, so the suite runs in seconds."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from classifier.tree import DecisionTree

TINY_TREE = {
    "name": "tiny", "first": "shape",
    "questions": [
        {"key": "shape", "answers": [{"key": "round", "next": None}, {"key": "disk", "next": "arms"},
                                     {"key": "artifact", "next": None}]},
        {"key": "arms", "answers": [{"key": "yes", "next": None}, {"key": "no", "next": None}]},
    ],
}


@pytest.fixture
def tiny_tree() -> DecisionTree:
    return DecisionTree.from_dict(TINY_TREE)


def blob_image(size: int, elongation: float, angle: float, rng: np.random.Generator) -> np.ndarray:
    """A Gaussian 'galaxy': round when elongation is 1, a disk when larger."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    u = x * np.cos(angle) + y * np.sin(angle)
    v = -x * np.sin(angle) + y * np.cos(angle)
    sigma = size / 8
    image = np.exp(-0.5 * ((u / (sigma * elongation)) ** 2 + (v / sigma) ** 2)) * 230
    return np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)


def write_tiny_catalog(directory: Path, n: int = 24, size: int = 32, seed: int = 0) -> pd.DataFrame:
    """Half round, half disk galaxies with 10 votes each; file_loc relative to ``directory``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        disk = i % 2 == 1
        image = blob_image(size, 3.0 if disk else 1.0, rng.uniform(0, np.pi), rng)
        name = f"g{i:03d}.png"
        Image.fromarray(np.stack([image] * 3, axis=-1)).save(directory / name)
        shape = [1, 8, 1] if disk else [8, 1, 1]
        arms = [5, 3] if disk else [0, 0]
        rows.append({"id_str": f"g{i:03d}", "file_loc": name, "shape_round": shape[0], "shape_disk": shape[1],
                     "shape_artifact": shape[2], "arms_yes": arms[0], "arms_no": arms[1]})
    return pd.DataFrame(rows)


@pytest.fixture
def tiny_catalog(tmp_path) -> tuple[pd.DataFrame, Path]:
    images = tmp_path / "images"
    images.mkdir()
    return write_tiny_catalog(images), images
