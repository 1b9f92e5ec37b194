"""Checks on the real survey data in ../shared/data (skipped when the folder is absent)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from classifier.data import Preprocessing, load_images, read_catalog
from classifier.finetune import binary_label_catalog, sample_labelled
from classifier.kaggle import predicted_shares
from classifier.schema import resolve_schema

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def gz2_catalog():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real survey data not found at {SHARED_DATA.resolve()}")
    schema = resolve_schema("gz2")
    return schema, read_catalog(SHARED_DATA / "gz2_kaggle" / "catalog.csv", schema, SHARED_DATA / "gz2_kaggle")


def test_kaggle_values_become_counts_that_follow_the_tree(gz2_catalog):
    schema, catalog = gz2_catalog
    assert catalog.counts.shape == (6922, 37)
    column = schema.tree.answer_columns.index
    features = catalog.counts[:, column("smooth-or-features_features-or-disk")]
    edge_on = catalog.counts[:, column("edge-on_yes")] + catalog.counts[:, column("edge-on_no")]
    assert np.abs(edge_on - features).max() <= 2  # only rounding separates them
    odd = catalog.counts[:, column("odd_yes")] + catalog.counts[:, column("odd_no")]
    assert np.all(np.abs(odd - 40) <= 1)  # the Kaggle quirk: everybody reaches "odd"


def test_shares_rebuilt_from_conditional_fractions_match_the_kaggle_values(gz2_catalog):
    """Conditional fractions × reach (odd reached by all) must reproduce the published values:
    this is exactly how rmse_kaggle turns predictions into the 37 challenge numbers."""
    schema, catalog = gz2_catalog
    shares = catalog.reference_shares
    totals = np.stack([shares[:, a:b].sum(1) for a, b in schema.question_slices], axis=1)[:, schema.answer_question]
    conditional = np.where(totals > 0, shares / np.maximum(totals, 1e-12), 1.0 / 7)
    rebuilt = predicted_shares(conditional, schema)
    assert np.sqrt(np.mean((rebuilt - shares) ** 2)) < 0.01


def test_real_images_decode_to_the_requested_size(gz2_catalog):
    _, catalog = gz2_catalog
    images = load_images(catalog.paths[:4], Preprocessing.for_size(64, channels=1))
    assert images.shape == (4, 1, 80, 80) and images.float().std() > 5


def test_ring_catalog_gives_one_vote_per_label_and_stratified_samples():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real survey data not found at {SHARED_DATA.resolve()}")
    rings = pd.read_csv(SHARED_DATA / "decals_rings" / "catalog.csv")
    counts = binary_label_catalog(rings, "ring")
    assert (counts["ring_yes"] + counts["ring_no"] == 1).all()
    assert counts["ring_yes"].sum() == rings["ring"].sum()
    labelled, rest = sample_labelled(rings, "ring", 50, seed=0)
    assert len(labelled) == 50 and len(rest) == len(rings) - 50
    assert abs(labelled["ring"].mean() - rings["ring"].mean()) < 0.05
