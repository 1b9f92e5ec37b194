import numpy as np
import pytest

from classifier.acquisition_batch import (
    QUEUE_RULES,
    power_keys,
    power_sample,
    queue_priorities,
    ranked_first,
    top_k,
)


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


def test_the_queues_power_order_is_power_sample_for_every_batch_size():
    """The platform's continuous order (queue_priorities) and the simulation's batch rule
    (power_sample) are one rule: with the same noise, every top-k of the queue is power_sample's k."""
    scores = np.random.default_rng(3).gamma(1.0, size=300)
    scores[::37] = 0.0
    priorities = queue_priorities(scores, rule="power-bald", beta=2.0, seed=11)
    order = np.argsort(-priorities, kind="stable")
    positive = int((scores > 0).sum())
    for k in (1, 20, 100, positive):
        np.testing.assert_array_equal(np.sort(power_sample(scores, k, beta=2.0, seed=11)), np.sort(order[:k]))
    np.testing.assert_allclose(np.log(priorities[scores > 0]), power_keys(scores, 2.0, 11)[scores > 0])
    assert (priorities >= 0).all() and (priorities[scores == 0] == 0).all()  # above the platform's −1 of unscored


def test_queue_priorities_bald_is_the_score_and_unknown_rules_fail():
    scores = np.array([0.3, 0.0, 2.0])
    np.testing.assert_array_equal(queue_priorities(scores, rule="bald"), scores)
    assert QUEUE_RULES == ("bald", "power-bald")
    with pytest.raises(ValueError, match="unknown queue rule"):
        queue_priorities(scores, rule="entropy")


def test_power_priorities_prefer_high_scores_but_mix_the_order():
    scores = np.linspace(0.01, 1.0, 400)
    priorities = queue_priorities(scores, rule="power-bald", beta=1.0, seed=0)
    top = np.argsort(-priorities)[:40]
    assert scores[top].mean() > 0.6  # high scores first on average...
    assert not np.array_equal(np.sort(top), np.sort(top_k(scores, 40)))  # ...but not top-k
    # log priority − β log score is standard Gumbel noise: mean γ ≈ 0.577, sd π/√6 ≈ 1.28.
    noise = np.log(priorities) - np.log(scores)
    assert noise.mean() == pytest.approx(0.5772, abs=0.2) and noise.std() == pytest.approx(1.2825, abs=0.2)


def test_ranked_first_puts_picks_on_top_in_pick_order_and_keeps_the_rest():
    priorities = np.array([0.5, 3.0, 0.1, 2.0, 0.0])
    ranked = ranked_first(priorities, np.array([4, 2]))
    assert np.argsort(-ranked).tolist() == [4, 2, 1, 3, 0]
    np.testing.assert_array_equal(ranked[[0, 1, 3]], priorities[[0, 1, 3]])
    assert 3.0 < ranked[[4, 2]].min() and ranked[[4, 2]].max() <= 4.0
    np.testing.assert_array_equal(ranked_first(priorities, np.array([], dtype=int)), priorities)
