"""The demo pack shipped in the repository: real galaxies, none of them trained on."""

import pandas as pd
import pytest
from PIL import Image

from classifier.splits import hash_split
from classifier.tree import DecisionTree
from demo import shipped_pack


def test_every_pack_galaxy_is_in_the_eval_split_never_the_models_training_part():
    ids = pd.read_csv(shipped_pack.CATALOG)["GalaxyID"].tolist()
    assert 250 <= len(ids) <= 400
    parts = hash_split(ids)
    assert len(parts["eval"]) == len(ids) and len(parts["encoder"]) == 0


def test_pack_images_are_small_jpegs_and_the_mix_covers_the_tree():
    galaxies = shipped_pack.galaxies(DecisionTree.load("gz2"))
    total = 0
    for galaxy in galaxies:
        with Image.open(galaxy.image_path) as image:
            assert image.format == "JPEG" and image.size == (shipped_pack.IMAGE_PX, shipped_pack.IMAGE_PX)
        total += galaxy.image_path.stat().st_size
    assert total < 5e6
    tags = {g.tag for g in galaxies}
    assert {"smooth", "edge-on", "barred", "spiral", "odd"} <= tags
    smooth = next(g for g in galaxies if g.tag == "smooth")
    first_question = smooth.counts["smooth-or-features_smooth"] + smooth.counts["smooth-or-features_features-or-disk"]
    assert smooth.counts["smooth-or-features_smooth"] >= 0.8 * first_question >= 0.8 * 35


def test_model_card_matches_the_shipped_checkpoint():
    card = shipped_pack.model_card()
    assert card["tree_hash"] == DecisionTree.load("gz2").version_hash
    assert card["pack_metrics"]["n_galaxies"] == len(pd.read_csv(shipped_pack.CATALOG))
    assert card["pack_metrics"]["rmse_kaggle"] < card["pack_baseline_rmse_kaggle"]


@pytest.mark.shared_data
def test_pack_votes_are_the_published_kaggle_values(shared_data):
    pack = pd.read_csv(shipped_pack.CATALOG).set_index("GalaxyID")
    published = pd.read_csv(shared_data / "gz2_kaggle" / "catalog.csv").set_index("GalaxyID").loc[pack.index]
    columns = [c for c in pack.columns if c.startswith("Class")]
    assert len(columns) == 37
    pd.testing.assert_frame_equal(pack[columns], published[columns], check_exact=False, atol=1e-9)
