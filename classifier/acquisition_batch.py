"""Choosing a *batch* of galaxies from per-galaxy acquisition scores.

Taking the top k by BALD fills a batch with near-duplicates: galaxies that look alike get
alike scores, and once the first is labelled the rest teach little. Stochastic "power"
acquisition (Kirsch et al. 2023, "Stochastic Batch Acquisition: A Simple Baseline for Deep
Active Learning", TMLR) samples the batch without replacement with probability proportional to
``score ** beta`` instead: high-scoring galaxies are still preferred, but the batch spreads
over the pool. It costs nothing beyond the scores (no pairwise similarities), so it scales
to the platform's queue. ``beta → ∞`` recovers top-k, ``beta = 0`` is random.
"""

from __future__ import annotations

import numpy as np

DEFAULT_BETA = 1.0
# How the platform's live queue orders scored galaxies (queue_priorities).
QUEUE_RULES = ("bald", "power-bald")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first."""
    scores = np.asarray(scores, dtype=np.float64)
    k = min(k, len(scores))
    chosen = np.argpartition(-scores, k - 1)[:k] if k > 0 else np.array([], dtype=np.int64)
    return chosen[np.argsort(-scores[chosen], kind="stable")]


def power_keys(scores: np.ndarray, beta: float = DEFAULT_BETA, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``beta · log score`` plus standard Gumbel noise, one draw per galaxy (``-inf`` where the
    score is not positive). Sorting by these keys, highest first, is drawing the whole pool
    without replacement with probability ∝ ``score ** beta`` (Gumbel-top-k), so the first k
    are a :func:`power_sample` of k: the rule as a continuous order, which is what a queue needs."""
    scores = np.asarray(scores, dtype=np.float64)
    if beta < 0:
        raise ValueError("beta must be non-negative")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    positive = scores > 0
    log_scores = np.full(len(scores), -np.inf)
    log_scores[positive] = beta * np.log(scores[positive])
    return log_scores + rng.gumbel(size=len(scores))


def power_sample(scores: np.ndarray, k: int, beta: float = DEFAULT_BETA, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``k`` distinct indices drawn with probability ∝ ``max(score, 0) ** beta``, without
    replacement (the top k of :func:`power_keys`). Zero scores are drawn only after all
    positive ones."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    keys = power_keys(scores, beta, rng)
    # Zero scores rank after every positive one, in random order among themselves.
    zero = ~np.isfinite(keys)
    keys[zero] = -1e300 * (1 + rng.random(int(zero.sum())))
    return top_k(keys, k)


def queue_priorities(scores: np.ndarray, *, rule: str, beta: float = DEFAULT_BETA,
                     seed: int | np.random.Generator = 0) -> np.ndarray:
    """The live queue's priority of each galaxy (served highest first) under an acquisition
    ``rule`` of :data:`QUEUE_RULES`: ``bald``, the score itself (top-k whatever the batch);
    ``power-bald``, ``exp(power_keys) = score ** beta · e^G`` — the order of :func:`power_sample`
    over the whole pool, its noise drawn once when the scores are. Both are ≥ 0 (zero scores
    give 0), so they stay above any negative priority a caller keeps for unscored galaxies."""
    scores = np.asarray(scores, dtype=np.float64)
    if rule == "bald":
        return scores.copy()
    if rule == "power-bald":
        with np.errstate(over="ignore"):
            return np.exp(power_keys(scores, beta, seed))
    raise ValueError(f"unknown queue rule {rule!r}; expected one of {QUEUE_RULES}")


def ranked_first(priorities: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """``priorities`` with the ``picks`` (indices) moved above every other galaxy, in pick
    order: the first pick gets the highest priority, all of them within 1 of the best other
    galaxy's (a scale a person reading priorities recognises). The others keep theirs."""
    out = np.asarray(priorities, dtype=np.float64).copy()
    picks = np.asarray(picks, dtype=np.int64)
    if len(picks) == 0:
        return out
    others = np.delete(out, picks)
    floor = max(float(others.max()), 0.0) if len(others) else 0.0
    out[picks] = floor + np.arange(len(picks), 0, -1, dtype=np.float64) / len(picks)
    return out
