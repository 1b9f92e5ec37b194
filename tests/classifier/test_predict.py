import numpy as np
import pytest
from scipy.stats import beta

from classifier.predict import Predictions, credible_intervals, load_model, mean_fractions
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
