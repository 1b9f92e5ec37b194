"""Compact per-sample fractions: one float16 row per posterior sample, whose mean is the mean
fraction and whose answers sum to one within each question."""

import numpy as np
import pytest

from classifier.predict import mean_fractions
from classifier.samples import sample_fraction_bytes, sample_fractions_from_bytes
from classifier.schema import Schema
from classifier.tree import load_tree


def test_round_trip_matches_the_concentration_ratios():
    schema = Schema(load_tree("gz2"))
    rng = np.random.default_rng(0)
    concentrations = rng.gamma(2.0, 3.0, size=(6, 5, schema.n_answers)) + 0.1
    rows = sample_fraction_bytes(concentrations, schema)
    assert len(rows) == 6 and {len(r) for r in rows} == {2 * 5 * schema.n_answers}
    decoded = np.stack([sample_fractions_from_bytes(r, schema.n_answers) for r in rows])
    assert decoded.mean(axis=1) == pytest.approx(mean_fractions(concentrations, schema), abs=1e-3)
    for start, stop in schema.question_slices:
        assert decoded[..., start:stop].sum(-1) == pytest.approx(1.0, abs=3e-3)
    with pytest.raises(ValueError, match="answers"):
        sample_fractions_from_bytes(rows[0][:-2], schema.n_answers)
