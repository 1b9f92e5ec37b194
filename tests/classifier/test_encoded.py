"""Images in memory (read from object storage) train and predict exactly as their files do."""

import numpy as np
import pytest
import torch

from classifier.data import ImageLoadError, load_images, read_catalog
from classifier.encoded import EncodedImage, encoded_catalog, predict_encoded
from classifier.predict import load_model
from classifier.schema import Schema
from classifier.training import TrainConfig, train

CONFIG = {"image_size": 32, "epochs": 2, "widths": (8, 16, 32), "dropout": 0.5, "cache_images": False}


def encoded(frame, images) -> list[EncodedImage]:
    return [EncodedImage((images / name).read_bytes(), f"galaxies/{name}") for name in frame["file_loc"]]


def test_encoded_images_train_and_predict_as_their_files(tiny_catalog, tiny_tree, tmp_path):
    frame, images = tiny_catalog
    schema = Schema.from_tree(tiny_tree)
    in_memory = encoded(frame, images)
    files = read_catalog(frame, schema, images)
    preprocessing = TrainConfig.fast_cpu(**CONFIG).preprocessing()
    # Same pixels, and one object decodes again (a lazy dataset reads it every epoch).
    assert torch.equal(load_images(in_memory, preprocessing), load_images(files.paths, preprocessing))
    assert torch.equal(load_images(in_memory[:3], preprocessing), load_images(files.paths[:3], preprocessing))

    from_files = train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "files",
                       config=TrainConfig.fast_cpu(**CONFIG))
    from_memory = train(encoded_catalog(frame.drop(columns=["file_loc"]), in_memory, schema), images_dir=None,
                        tree=tiny_tree, out_dir=tmp_path / "memory", config=TrainConfig.fast_cpu(**CONFIG))
    assert [h["val_loss"] for h in from_memory.history] == pytest.approx([h["val_loss"] for h in from_files.history])

    predictor = load_model(from_memory.checkpoint_path, device="cpu")
    torch.manual_seed(0)
    expected = predictor.predict(files.paths, n_samples=3, grid_points=101)
    torch.manual_seed(0)
    got = predict_encoded(predictor, in_memory, n_samples=3, grid_points=101)
    np.testing.assert_allclose(got.concentrations, expected.concentrations, rtol=1e-5)
    np.testing.assert_allclose(got.upper, expected.upper, rtol=1e-5)
    assert got.ids[0] == "galaxies/g000.png"


def test_undecodable_bytes_name_the_stored_file(tiny_tree):
    preprocessing = TrainConfig.fast_cpu(**CONFIG).preprocessing()
    with pytest.raises(ImageLoadError, match="galaxies/broken.png"):
        load_images([EncodedImage(b"not an image", "galaxies/broken.png")], preprocessing)


def test_an_encoded_catalog_needs_one_image_per_row(tiny_catalog, tiny_tree):
    frame, images = tiny_catalog
    with pytest.raises(ValueError, match="5 images for 24 catalog rows"):
        encoded_catalog(frame, encoded(frame, images)[:5], Schema.from_tree(tiny_tree))
