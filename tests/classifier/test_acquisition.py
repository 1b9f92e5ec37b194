from math import comb

import numpy as np
import pytest

from classifier.acquisition import (
    compositions,
    expected_votes,
    predictive_entropy,
    question_mutual_information,
    random_scores,
    score,
    single_vote_bald,
    tree_bald,
)
from classifier.schema import Schema, resolve_schema


def random_concentrations(rng, galaxies, samples, answers, spread=20.0):
    return 1 + spread * rng.random((galaxies, samples, answers))


@pytest.mark.parametrize(("n", "k"), [(0, 3), (5, 1), (7, 2), (6, 4)])
def test_compositions_enumerate_every_vote_vector_once(n, k):
    votes = compositions(n, k)
    assert len(votes) == comb(n + k - 1, k - 1)
    assert np.all(votes.sum(1) == n) and np.all(votes >= 0)
    assert len({tuple(v) for v in votes}) == len(votes)


def test_exact_and_monte_carlo_agree():
    rng = np.random.default_rng(0)
    alpha = random_concentrations(rng, 5, 4, 3)
    votes = np.full(5, 12)
    exact = question_mutual_information(alpha, votes, method="exact")
    mc = question_mutual_information(alpha, votes, method="mc", mc_samples=40_000, seed=3)
    np.testing.assert_allclose(mc, exact, rtol=0.05, atol=0.005)


def test_exact_matches_brute_force_for_two_answers():
    """K = 2 is a Beta-Binomial: compare with a loop over n written from the definition."""
    from scipy.special import betaln, gammaln

    alpha = np.array([[[2.0, 5.0], [9.0, 1.5], [3.0, 3.0]]])
    n_total = 6

    def pmf(a, b):
        n = np.arange(n_total + 1)
        return np.exp(gammaln(n_total + 1) - gammaln(n + 1) - gammaln(n_total - n + 1)
                      + betaln(n + a, n_total - n + b) - betaln(a, b))

    p = np.array([pmf(a, b) for a, b in alpha[0]])
    entropy = lambda q: -(q * np.log(q)).sum(-1)  # noqa: E731
    expected = entropy(p.mean(0)) - entropy(p).mean()
    assert question_mutual_information(alpha, np.array([n_total]))[0] == pytest.approx(expected, rel=1e-9)


def test_mutual_information_is_non_negative_and_zero_for_identical_samples():
    rng = np.random.default_rng(1)
    alpha = random_concentrations(rng, 20, 5, 4)
    votes = rng.integers(0, 15, 20)
    for method in ("exact", "mc"):
        assert np.all(question_mutual_information(alpha, votes, method=method) >= 0)
        identical = np.repeat(alpha[:, :1], 5, axis=1)
        np.testing.assert_allclose(question_mutual_information(identical, votes, method=method), 0, atol=1e-12)


def test_zero_expected_votes_gives_zero_information():
    alpha = random_concentrations(np.random.default_rng(2), 3, 5, 3)
    assert np.all(question_mutual_information(alpha, np.zeros(3)) == 0)


def test_tree_bald_interpolates_between_integer_vote_totals(tiny_tree):
    schema = Schema.from_tree(tiny_tree)
    alpha = random_concentrations(np.random.default_rng(3), 4, 5, 5)
    per_question = tree_bald(alpha, schema, n_total=10.5, per_question=True)
    first = [question_mutual_information(alpha[:, :, :3], np.full(4, n)) for n in (10, 11)]
    np.testing.assert_allclose(per_question[:, 0], (first[0] + first[1]) / 2)
    assert per_question.shape == (4, 2)


def test_unreachable_question_scores_zero(tiny_tree):
    """If nobody answers 'disk', the 'arms' question gets no votes and no information."""
    schema = Schema.from_tree(tiny_tree)
    alpha = random_concentrations(np.random.default_rng(4), 3, 5, 5)
    alpha[:, :, 1] = 1e-9
    assert expected_votes(alpha, schema, 40)[:, 1] == pytest.approx(0, abs=1e-6)
    assert np.all(tree_bald(alpha, schema, per_question=True)[:, 1] < 1e-6)


def test_confident_model_scores_lower_than_disagreeing_samples():
    schema = resolve_schema("gz2")
    rng = np.random.default_rng(5)
    base = random_concentrations(rng, 1, 1, schema.n_answers, spread=50)
    agreeing = np.repeat(base, 5, axis=1) * rng.uniform(0.99, 1.01, (1, 5, schema.n_answers))
    disagreeing = random_concentrations(rng, 1, 5, schema.n_answers, spread=100)
    scores = tree_bald(np.concatenate([agreeing, disagreeing]), schema)
    assert scores[0] < scores[1]


def test_single_vote_bald_is_tree_bald_of_one_vote_and_never_above_tree_bald(tiny_tree):
    schema = Schema.from_tree(tiny_tree)
    rng = np.random.default_rng(8)
    alpha = random_concentrations(rng, 40, 6, schema.n_answers, spread=30)
    one_vote = single_vote_bald(alpha, schema)
    # One vote in all reaches question q with probability reach_q: tree BALD's interpolation at N_q < 1.
    np.testing.assert_allclose(one_vote, tree_bald(alpha, schema, n_total=1), rtol=1e-9, atol=1e-12)
    assert np.all(one_vote <= tree_bald(alpha, schema, n_total=10) + 1e-12) and one_vote.std() > 0
    identical = np.repeat(alpha[:, :1], 6, axis=1)
    assert np.all(single_vote_bald(identical, schema) < 1e-12)


def test_predictive_entropy_is_largest_for_uniform_fractions(tiny_tree):
    schema = Schema.from_tree(tiny_tree)
    uniform = np.full((1, 3, 5), 10.0)
    certain = np.array([[[100.0, 1.0, 1.0, 1.0, 1.0]] * 3])
    entropy = predictive_entropy(np.concatenate([uniform, certain]), schema)
    assert entropy[0] == pytest.approx(np.log(3) + np.log(2) / 3)
    assert entropy[1] < entropy[0]


def test_random_scores_are_reproducible_and_dispatch_works(tiny_tree):
    np.testing.assert_array_equal(random_scores(5, seed=1), random_scores(5, seed=1))
    schema = Schema.from_tree(tiny_tree)
    alpha = random_concentrations(np.random.default_rng(6), 4, 3, 5)
    np.testing.assert_array_equal(score(alpha, schema, "entropy"), predictive_entropy(alpha, schema))
    with pytest.raises(ValueError, match="unknown acquisition"):
        score(alpha, schema, "magic")
