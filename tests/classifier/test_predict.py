import numpy as np
import pytest
import torch
from scipy.stats import beta

from classifier.data import load_images
from classifier.predict import Predictions, credible_intervals, load_model, mc_concentrations, mean_fractions
from classifier.schema import Schema
from classifier.training import TrainConfig, train


def test_credible_interval_of_a_single_beta_matches_scipy(tiny_tree):
    schema = Schema.from_tree(tiny_tree)
    alpha = np.array([[[3.0, 7.0, 2.0, 4.0, 9.0]]])
    lower, upper = credible_intervals(alpha, schema, interval=0.9)
    assert lower[0, 0] == pytest.approx(beta.ppf(0.05, 3, 9), abs=2e-3)
    assert upper[0, 4] == pytest.approx(beta.ppf(0.95, 9, 4), abs=2e-3)


def test_fractions_are_mean_over_samples_and_sum_to_one_per_question(tiny_tree):
    schema = Schema.from_tree(tiny_tree)
    alpha = 1 + 10 * np.random.default_rng(0).random((6, 4, 5))
    fractions = mean_fractions(alpha, schema)
    np.testing.assert_allclose(fractions[:, :3].sum(1), 1)
    np.testing.assert_allclose(fractions[:, 0], (alpha[:, :, 0] / alpha[:, :, :3].sum(-1)).mean(1))
    frame = Predictions.from_concentrations([str(i) for i in range(6)], alpha, schema).to_frame()
    assert list(frame.columns[:3]) == ["id_str", "shape_round_fraction", "shape_round_fraction_lower"]


def test_predictor_runs_mc_dropout_on_image_files(tiny_catalog, tiny_tree, tmp_path):
    frame, images = tiny_catalog
    result = train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "run",
                   config=TrainConfig.fast_cpu(image_size=32, epochs=1, widths=(8, 16, 32), dropout=0.5))
    predictor = load_model(result.checkpoint_path, device="cpu")
    assert predictor.tree.name == "tiny" and predictor.schema.n_answers == 5
    paths = [images / f for f in frame["file_loc"][:5]]
    predictions = predictor.predict(paths, n_samples=4)
    assert predictions.concentrations.shape == (5, 4, 5)
    assert predictions.fractions.shape == predictions.lower.shape == predictions.upper.shape == (5, 5)
    assert np.all(predictions.lower <= predictions.fractions) and np.all(predictions.fractions <= predictions.upper)
    assert not np.allclose(predictions.concentrations[:, 0], predictions.concentrations[:, 1])
    assert predictions.ids == [f"g{i:03d}" for i in range(5)]


def test_views_make_predictions_invariant_to_rotating_and_mirroring_the_image(tiny_catalog, tiny_tree, tmp_path):
    """Averaged over the eight views, a model without dropout gives the same answer for a galaxy
    however the image is turned or mirrored; a single view does not."""
    frame, images = tiny_catalog
    result = train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "run",
                   config=TrainConfig.fast_cpu(image_size=32, epochs=1, widths=(8, 16, 32), dropout=0.0))
    predictor = load_model(result.checkpoint_path, device="cpu")
    pixels = load_images([images / f for f in frame["file_loc"][:6]], predictor.preprocessing)
    turned = torch.flip(torch.rot90(pixels, 1, dims=(2, 3)), dims=(3,))

    def mean_alpha(batch, views):
        return mc_concentrations(predictor.model, batch, predictor.preprocessing, n_samples=8,
                                 device=torch.device("cpu"), views=views).mean(1)

    one_view_change = np.abs(mean_alpha(turned, 1) - mean_alpha(pixels, 1)).max()
    eight_view_change = np.abs(mean_alpha(turned, 8) - mean_alpha(pixels, 8)).max()
    assert one_view_change > 1e-3 and eight_view_change < 1e-3 * one_view_change
    with pytest.raises(ValueError, match="views must be in 1..8"):
        mean_alpha(pixels, 9)


def test_predictor_reads_intervals_off_the_grid_it_is_given(tiny_catalog, tiny_tree, tmp_path):
    """The catalogue scorer asks for a coarse CDF grid; the intervals are then those of that grid."""
    frame, images = tiny_catalog
    result = train(frame, images_dir=images, tree=tiny_tree, out_dir=tmp_path / "run",
                   config=TrainConfig.fast_cpu(image_size=32, epochs=1, widths=(8, 16, 32), dropout=0.5))
    predictor = load_model(result.checkpoint_path, device="cpu")
    paths = [images / f for f in frame["file_loc"][:5]]
    coarse = predictor.predict(paths, n_samples=3, grid_points=11)
    lower, upper = credible_intervals(coarse.concentrations, predictor.schema, grid_points=11)
    np.testing.assert_allclose(coarse.lower, lower)
    np.testing.assert_allclose(coarse.upper, upper)
    fine_lower, _ = credible_intervals(coarse.concentrations, predictor.schema)
    assert not np.allclose(coarse.lower, fine_lower)
