import numpy as np
import pytest

from classifier.acquisition_batch import power_sample, top_k


def test_top_k_returns_the_best_first():
    assert top_k(np.array([0.1, 3.0, 2.0, 5.0]), 3).tolist() == [3, 1, 2]


def test_power_sample_draws_distinct_indices_and_zero_scores_last():
    scores = np.array([0.0, 1.0, 2.0, 0.0, 4.0])
    for seed in range(20):
        picked = power_sample(scores, 4, beta=1.0, seed=seed)
        assert len(set(picked.tolist())) == 4
        assert set(picked[:3].tolist()) == {1, 2, 4}


def test_single_draws_follow_score_to_the_power_beta():
    scores = np.array([1.0, 2.0, 4.0])
    rng = np.random.default_rng(0)
    draws = np.array([power_sample(scores, 1, beta=1.0, seed=rng)[0] for _ in range(7000)])
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / len(draws), scores / scores.sum(), atol=0.02)


def test_large_beta_is_top_k_and_zero_beta_ignores_scores():
    scores = np.linspace(0.1, 1.0, 50)
    assert sorted(power_sample(scores, 5, beta=500.0, seed=1).tolist()) == sorted(top_k(scores, 5).tolist())
    rng = np.random.default_rng(2)
    mean_rank = np.mean([power_sample(scores, 5, beta=0.0, seed=rng).mean() for _ in range(400)])
    assert mean_rank == pytest.approx(24.5, abs=1.5)


def test_negative_beta_is_rejected():
    with pytest.raises(ValueError):
        power_sample(np.ones(3), 1, beta=-1.0)
