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


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first."""
    scores = np.asarray(scores, dtype=np.float64)
    k = min(k, len(scores))
    chosen = np.argpartition(-scores, k - 1)[:k] if k > 0 else np.array([], dtype=np.int64)
    return chosen[np.argsort(-scores[chosen], kind="stable")]


def power_sample(scores: np.ndarray, k: int, beta: float = DEFAULT_BETA, seed: int | np.random.Generator = 0) -> np.ndarray:
    """``k`` distinct indices drawn with probability ∝ ``max(score, 0) ** beta``, without
    replacement (Gumbel-top-k on ``beta · log score``). Zero scores are drawn only after all
    positive ones."""
    scores = np.asarray(scores, dtype=np.float64)
    if beta < 0:
        raise ValueError("beta must be non-negative")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    positive = scores > 0
    log_scores = np.full(len(scores), -np.inf)
    log_scores[positive] = beta * np.log(scores[positive])
    keys = log_scores + rng.gumbel(size=len(scores))
    # Zero scores rank after every positive one, in random order among themselves.
    keys[~positive] = -1e300 * (1 + rng.random(int((~positive).sum())))
    return top_k(keys, k)
