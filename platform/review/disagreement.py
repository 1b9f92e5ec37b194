"""Model–crowd disagreement: how much more surprising the volunteers' votes are under the
model's posterior than under a posterior that agrees with them.

The model's posterior for one question is a Dirichlet over the answer fractions. Stored
predictions keep its mean and a 90% credible interval per answer, not the concentration, so
the concentration is recovered by moments: each answer's marginal is Beta(α_i, A − α_i) with
variance m(1 − m)/(A + 1), and the interval's width gives the standard deviation
(width / 2·1.645, the normal approximation); A is the median of the answers' estimates,
clipped to [1, 1000]. The votes k (n in all) are then scored with the Dirichlet–Multinomial

    surprise = −log DM(k | A·m) − (−log DM(k | A·k/n))

summed over the questions that have votes: the excess over a same-width posterior centred on
the crowd's own fractions, so the multinomial coefficient (large for evenly split votes
whatever the model says) cancels and 0 means full agreement. In nats; it grows with the
votes for a fixed mismatch, as evidence should. Galaxies with fewer votes than the minimum on
the first question get None (too few votes to disagree with)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln

Z90 = 1.6448536269514722
MIN_CONCENTRATION, MAX_CONCENTRATION = 1.0, 1000.0
FRACTION_FLOOR = 1e-3


def concentrations(fractions: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Per galaxy, the Dirichlet's total concentration A for one question's answers ``(G, K)``."""
    mean = np.clip(fractions, 1e-6, 1 - 1e-6)
    sd = np.maximum((upper - lower) / (2 * Z90), 1e-4)
    estimates = mean * (1 - mean) / sd ** 2 - 1
    return np.clip(np.median(estimates, axis=1), MIN_CONCENTRATION, MAX_CONCENTRATION)


def dirichlet_multinomial_log_pmf(counts: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    n, total = counts.sum(axis=1), alpha.sum(axis=1)
    return (gammaln(n + 1) - gammaln(counts + 1).sum(axis=1) + gammaln(total) - gammaln(n + total)
            + (gammaln(counts + alpha) - gammaln(alpha)).sum(axis=1))


def _normalised(values: np.ndarray) -> np.ndarray:
    values = np.maximum(values, FRACTION_FLOOR)
    return values / values.sum(axis=1, keepdims=True)


def disagreement(*, fractions: np.ndarray, lower: np.ndarray, upper: np.ndarray, counts: np.ndarray,
                 slices: Sequence[tuple[int, int]], min_votes: int) -> np.ndarray:
    """Excess surprise per galaxy (NaN below ``min_votes`` on the first question); every array
    is ``(G, answers)`` in the same column order, ``slices`` the questions' column ranges."""
    counts = np.asarray(counts, dtype=float)
    total = np.zeros(len(counts))
    for start, stop in slices:
        k = counts[:, start:stop]
        n = k.sum(axis=1)
        if not n.any():
            continue
        width = concentrations(fractions[:, start:stop], lower[:, start:stop], upper[:, start:stop])[:, None]
        model = _normalised(fractions[:, start:stop]) * width
        crowd = _normalised(np.divide(k, np.maximum(n, 1)[:, None])) * width
        excess = dirichlet_multinomial_log_pmf(k, crowd) - dirichlet_multinomial_log_pmf(k, model)
        total += np.where(n > 0, excess, 0.0)
    first_start, first_stop = slices[0]
    enough = counts[:, first_start:first_stop].sum(axis=1) >= min_votes
    return np.where(enough, total, np.nan)
