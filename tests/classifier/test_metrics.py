import json

import numpy as np
import pytest

from classifier.kaggle import predicted_shares
from classifier.metrics import evaluate, format_table
from classifier.schema import Schema, resolve_schema


def sample_counts(concentrations, schema, votes, rng):
    """Votes drawn from the model's own posterior predictive (Dirichlet-Multinomial)."""
    counts = np.zeros(concentrations.shape[::2])
    for g in range(len(counts)):
        t = rng.integers(concentrations.shape[1])
        for start, stop in schema.question_slices:
            counts[g, start:stop] = rng.multinomial(votes, rng.dirichlet(concentrations[g, t, start:stop]))
    return counts


def test_votes_drawn_from_the_model_are_covered_at_least_nominally(tiny_tree):
    schema = Schema.from_tree(tiny_tree)
    rng = np.random.default_rng(0)
    concentrations = 1 + 40 * rng.random((300, 5, 5))
    metrics = evaluate(concentrations, sample_counts(concentrations, schema, 20, rng), schema)
    coverage = metrics["calibration"]["vote_coverage"]
    assert 0.88 <= coverage <= 0.99


def test_overconfident_model_is_undercovered(tiny_tree):
    schema = Schema.from_tree(tiny_tree)
    rng = np.random.default_rng(1)
    concentrations = 1 + 40 * rng.random((300, 5, 5))
    counts = sample_counts(concentrations, schema, 20, rng)
    one_sharp_pass = 50 * concentrations.mean(axis=1, keepdims=True).repeat(5, axis=1)
    overconfident = evaluate(one_sharp_pass, counts, schema)
    assert overconfident["calibration"]["vote_coverage"] < 0.8


def test_accuracy_rmse_and_confusion_on_known_numbers(tiny_tree):
    schema = Schema.from_tree(tiny_tree)
    counts = np.array([[18, 1, 1, 0, 0], [1, 19, 0, 9, 1], [2, 18, 0, 1, 9], [10, 10, 0, 5, 5]], dtype=float)
    # predictions: right on galaxy 0 and 1, wrong answer for 'arms' on galaxy 2
    alpha = np.array([[90, 5, 5, 50, 50], [5, 90, 5, 90, 10], [5, 90, 5, 90, 10], [50, 50, 1, 50, 50]], dtype=float)
    metrics = evaluate(alpha[:, None, :].repeat(3, 1), counts, schema, min_votes=10)
    shape = metrics["questions"]["shape"]
    assert shape["n_confident"] == 3 and shape["accuracy"] == 1.0
    assert shape["confusion"] == [[1, 0, 0], [0, 2, 0], [0, 0, 0]]
    arms = metrics["questions"]["arms"]
    assert arms["n_confident"] == 2 and arms["accuracy"] == 0.5
    assert arms["confusion"] == [[1, 0], [1, 0]]
    fractions = alpha / np.concatenate([alpha[:, :3].sum(1, keepdims=True).repeat(3, 1),
                                        alpha[:, 3:].sum(1, keepdims=True).repeat(2, 1)], axis=1)
    observed = counts / np.concatenate([counts[:, :3].sum(1, keepdims=True).repeat(3, 1),
                                        np.maximum(counts[:, 3:].sum(1, keepdims=True), 1).repeat(2, 1)], axis=1)
    answered = np.ones_like(counts, dtype=bool)
    answered[0, 3:] = False
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean((fractions - observed)[answered] ** 2)))
    json.dumps(metrics)
    assert "shape" in format_table(metrics)


def test_kaggle_rmse_is_zero_for_exact_shares_and_counts_odd_as_always_reached():
    schema = resolve_schema("gz2")
    rng = np.random.default_rng(2)
    fractions = np.concatenate([rng.dirichlet(np.ones(b - a), size=4) for a, b in schema.question_slices], axis=1)
    shares = predicted_shares(fractions, schema)
    odd = schema.question_slices[schema.tree.question_keys.index("odd")]
    np.testing.assert_allclose(shares[:, odd[0]:odd[1]].sum(1), 1.0)
    huge = 1e6 * fractions[:, None, :].repeat(2, 1)
    counts = np.rint(shares * 40)
    metrics = evaluate(huge, counts, schema, reference_shares=shares)
    assert metrics["rmse_kaggle"] == pytest.approx(0, abs=1e-5)
    assert "rmse_kaggle" not in evaluate(np.ones((2, 2, 34)), np.ones((2, 34)), resolve_schema("decals_dr5"))
