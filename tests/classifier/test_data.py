import numpy as np
import pandas as pd
import pytest
import torch

from classifier.data import (
    CatalogError,
    ImageLoadError,
    Preprocessing,
    augment_transform,
    eval_transform,
    load_images,
    read_catalog,
)
from classifier.kaggle import kaggle_columns
from classifier.schema import Schema, resolve_schema


def test_reads_counts_in_schema_order_and_absolute_paths(tiny_catalog, tiny_tree):
    frame, images = tiny_catalog
    catalog = read_catalog(frame[frame.columns[::-1]], Schema.from_tree(tiny_tree), images)
    assert catalog.counts.shape == (24, 5)
    np.testing.assert_array_equal(catalog.counts[1], [1, 8, 1, 5, 3])
    assert catalog.paths[0] == str(images / "g000.png")


def test_nan_counts_are_zero_votes(tiny_catalog, tiny_tree):
    frame, images = tiny_catalog
    frame.loc[0, "arms_yes"] = np.nan
    assert read_catalog(frame, Schema.from_tree(tiny_tree), images).counts[0, 3] == 0


def test_missing_count_column_is_an_error(tiny_catalog, tiny_tree):
    frame, images = tiny_catalog
    with pytest.raises(CatalogError, match="arms_no"):
        read_catalog(frame.drop(columns=["arms_no"]), Schema.from_tree(tiny_tree), images)


def test_count_column_not_in_schema_is_an_error(tiny_catalog, tiny_tree):
    frame, images = tiny_catalog
    frame["arms_maybe"] = 1
    with pytest.raises(CatalogError, match="'arms_maybe' is not in schema"):
        read_catalog(frame, Schema.from_tree(tiny_tree), images)


def test_fraction_columns_are_not_mistaken_for_counts(tiny_catalog, tiny_tree):
    frame, images = tiny_catalog
    frame["arms_yes_fraction"] = 0.5
    assert read_catalog(frame, Schema.from_tree(tiny_tree), images).counts.shape == (24, 5)


def test_missing_and_unreadable_images_are_reported(tiny_catalog, tiny_tree):
    frame, images = tiny_catalog
    schema = Schema.from_tree(tiny_tree)
    with pytest.raises(ImageLoadError, match="not found"):
        read_catalog(frame.assign(file_loc="nope.png"), schema, images)
    (images / "g000.png").write_bytes(b"not an image")
    with pytest.raises(ImageLoadError, match="g000.png"):
        load_images([images / "g000.png"], Preprocessing.for_size(32))


def test_kaggle_catalog_converts_to_counts(tmp_path):
    schema = resolve_schema("gz2")
    row = {"GalaxyID": 42, "file_loc": "42.jpg", **{c: 0.0 for c in kaggle_columns(schema)}}
    row.update({"Class1.1": 0.5, "Class1.2": 0.5, "Class2.2": 0.5, "Class6.2": 1.0, "Class7.1": 0.5})
    (tmp_path / "42.jpg").write_bytes(b"")
    catalog = read_catalog(pd.DataFrame([row]), schema, tmp_path)
    assert catalog.frame.loc[0, "id_str"] == "42"
    assert catalog.counts[0, schema.tree.answer_columns.index("smooth-or-features_smooth")] == 20
    assert catalog.counts[0, schema.tree.answer_columns.index("odd_no")] == 40
    assert catalog.reference_shares[0, schema.tree.answer_columns.index("edge-on_no")] == 0.5
    with pytest.raises(CatalogError, match="Class12.1"):
        read_catalog(pd.DataFrame([{**row, "Class12.1": 0.1}]), schema, tmp_path)


def test_eval_transform_is_deterministic_and_augmentation_is_not():
    preprocessing = Preprocessing.for_size(32)
    images = torch.randint(0, 255, (4, 3, preprocessing.load_size, preprocessing.load_size), dtype=torch.uint8)
    first, second = eval_transform(images, preprocessing), eval_transform(images, preprocessing)
    assert first.shape == (4, 3, 32, 32) and torch.equal(first, second)
    generator = torch.Generator().manual_seed(0)
    assert not torch.allclose(augment_transform(images, preprocessing, generator),
                              augment_transform(images, preprocessing, generator))


def test_rotation_augmentation_preserves_a_centred_round_blob():
    """A symmetric galaxy looks the same after any rotation/flip: the augmentation must not
    shift or distort it (beyond interpolation)."""
    preprocessing = Preprocessing(image_size=32, load_size=40, crop_fraction=0.8, zoom_jitter=0.0, shift_jitter=0.0)
    y, x = np.mgrid[:40, :40] - 19.5
    blob = torch.tensor(np.exp(-(x ** 2 + y ** 2) / 40) * 255, dtype=torch.uint8)
    images = blob.expand(8, 3, 40, 40).clone()
    augmented = augment_transform(images, preprocessing, torch.Generator().manual_seed(1))
    reference = eval_transform(images[:1], preprocessing)
    assert (augmented - reference).abs().max() < 0.3
