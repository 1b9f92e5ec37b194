"""The model–crowd disagreement score."""

import numpy as np
from scipy.stats import dirichlet_multinomial

from review.disagreement import concentrations, dirichlet_multinomial_log_pmf, disagreement


def test_log_pmf_matches_scipy():
    counts = np.array([[3, 0, 7], [1, 1, 1]], dtype=float)
    alpha = np.array([[0.5, 2.0, 1.5], [3.0, 3.0, 3.0]])
    expected = [dirichlet_multinomial.logpmf(c, a, int(c.sum())) for c, a in zip(counts, alpha)]
    np.testing.assert_allclose(dirichlet_multinomial_log_pmf(counts, alpha), expected, rtol=1e-10)


def test_concentration_recovered_from_a_beta_interval():
    total, mean = 20.0, np.array([0.2, 0.3, 0.5])
    # The normal approximation's interval of each Beta marginal.
    sd = np.sqrt(mean * (1 - mean) / (total + 1))
    lower, upper = mean - 1.6448536 * sd, mean + 1.6448536 * sd
    assert abs(concentrations(mean[None], lower[None], upper[None])[0] - total) < 1e-6


def test_agreement_scores_near_zero_and_disagreement_high():
    fractions = np.array([[0.8, 0.2], [0.8, 0.2], [0.8, 0.2]])
    lower, upper = fractions - 0.1, fractions + 0.1
    counts = np.array([[16, 4], [2, 18], [1, 1]])
    scores = disagreement(fractions=fractions, lower=lower, upper=upper, counts=counts, slices=[(0, 2)], min_votes=5)
    assert abs(scores[0]) < 0.5
    assert scores[1] > 10
    assert np.isnan(scores[2])  # too few votes


def test_more_votes_for_the_same_mismatch_is_more_disagreement():
    fractions = np.array([[0.8, 0.2], [0.8, 0.2]])
    lower, upper = fractions - 0.05, fractions + 0.05
    counts = np.array([[5, 5], [40, 40]])
    low, high = disagreement(fractions=fractions, lower=lower, upper=upper, counts=counts, slices=[(0, 2)],
                             min_votes=5)
    assert high > low > 0


def test_questions_without_votes_add_nothing():
    fractions = np.array([[0.5, 0.5, 0.9, 0.1]])
    bounds = dict(lower=fractions - 0.1, upper=fractions + 0.1)
    one = disagreement(fractions=fractions, counts=np.array([[10, 10, 0, 0]]), slices=[(0, 2)], min_votes=1, **bounds)
    two = disagreement(fractions=fractions, counts=np.array([[10, 10, 0, 0]]), slices=[(0, 2), (2, 4)], min_votes=1,
                       **bounds)
    np.testing.assert_allclose(one, two)
