"""Frozen encoders -> stored per-galaxy embeddings (supervised checkpoint, SSL file, random)."""

import numpy as np
import pytest
import torch

from classifier.checkpoint import Checkpoint, save_checkpoint
from classifier.data import Preprocessing, eval_transform, load_images, resolve_paths
from classifier.embeddings import (
    encode_images,
    encode_paths,
    load_embeddings,
    load_encoder,
    random_encoder,
    save_embeddings,
)
from classifier.models import ArchitectureConfig, build_model
from classifier.schema import Schema
from classifier.ssl import SSLConfig, train_ssl_encoder

WIDTHS = (8, 16)


def tiny_images(n: int = 6, size: int = 40, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 255, size=(n, 3, size, size), dtype=np.uint8))


def test_dihedral_view_average_makes_embeddings_rotation_invariant():
    frozen = random_encoder(WIDTHS, image_size=32, crop_fraction=0.8)
    images = tiny_images()
    rotated = torch.rot90(images, 1, dims=(2, 3))
    eight = encode_images(frozen, images, views=8)
    assert eight.shape == (6, 16) and eight.dtype == np.float32
    np.testing.assert_allclose(eight, encode_images(frozen, rotated, views=8), rtol=1e-4, atol=1e-5)
    one = encode_images(frozen, images, views=1)
    assert np.abs(one - encode_images(frozen, rotated, views=1)).max() > 1e-3
    with pytest.raises(ValueError, match="views"):
        encode_images(frozen, images, views=9)


def test_supervised_checkpoint_encoder_matches_the_model_encoder(tmp_path, tiny_tree, tiny_catalog):
    schema = Schema.from_tree(tiny_tree)
    model = build_model(ArchitectureConfig(n_outputs=schema.n_answers, widths=WIDTHS))
    preprocessing = Preprocessing.for_size(32, 3, 0.8)
    path = save_checkpoint(Checkpoint(schema=schema, architecture=model.config, preprocessing=preprocessing,
                                      model_state=model.state_dict()), tmp_path / "best.pt")
    frozen = load_encoder(path)
    catalog, images_dir = tiny_catalog
    paths = list(resolve_paths(catalog, images_dir))[:5]
    embeddings = encode_paths(frozen, paths, load_chunk=2)
    model.eval()
    with torch.no_grad():
        expected = model.encoder(eval_transform(load_images(paths, preprocessing), preprocessing)).numpy()
    np.testing.assert_allclose(embeddings, expected, rtol=1e-4, atol=1e-5)


def test_ssl_encoder_trains_saves_and_loads(tmp_path):
    config = SSLConfig(widths=WIDTHS, image_size=32, epochs=2, batch_size=8, projection_dim=8)
    images = tiny_images(16, size=config.preprocessing().load_size)
    result = train_ssl_encoder(images, config=config, out_path=tmp_path / "ssl.pt")
    assert len(result["history"]) == 2 and all(np.isfinite(h["loss"]) for h in result["history"])
    frozen = load_encoder(tmp_path / "ssl.pt")
    assert frozen.dim == 16 and frozen.preprocessing.image_size == 32
    untrained = random_encoder(WIDTHS, image_size=32, crop_fraction=0.5, seed=0)
    assert np.abs(encode_images(frozen, images) - encode_images(untrained, images)).max() > 1e-3


def test_embeddings_round_trip_and_shape_check(tmp_path):
    array = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    save_embeddings(tmp_path / "e", ["a", "b", "c"], array)
    ids, loaded = load_embeddings(tmp_path / "e")
    assert ids == ["a", "b", "c"] and np.array_equal(loaded, array)
    with pytest.raises(ValueError, match="one row per id"):
        save_embeddings(tmp_path / "f", ["a"], array)
    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "missing.pt")
