"""Which galaxy should volunteers see next: tree BALD, predictive entropy, random.

Tree BALD is the mutual information between the next votes and the model parameters,
summed over questions. For question q with K answers and N_q expected votes::

    I_q = H[ mean_t p(n | α_t) ] − mean_t H[ p(n | α_t) ]

where p is the Dirichlet–Multinomial over vote vectors n with Σn = N_q and α_t the
concentrations of MC-dropout pass t. N_q = n_total × probability of reaching q under the
mean predicted fractions. N_q is generally not an integer: we interpolate linearly between
I_q(floor N_q) and I_q(ceil N_q), so scores change smoothly with the prediction (I_q(0) = 0).

I_q is computed exactly by enumerating all C(N+K−1, K−1) vote vectors when that number is at
most ``exact_limit``, otherwise by an unbiased Monte-Carlo estimate: draw t, then n ~ DirMult(α_t),
and average log p(n | α_t) − log mean_s p(n | α_s).
"""

from __future__ import annotations

from functools import lru_cache
from math import comb

import numpy as np
from scipy.special import gammaln

from classifier.predict import mean_fractions
from classifier.schema import Schema

DEFAULT_EXACT_LIMIT = 5000
DEFAULT_MC_SAMPLES = 256
GALAXY_CHUNK_ELEMENTS = 4_000_000


@lru_cache(maxsize=512)
def compositions(n: int, k: int) -> np.ndarray:
    """All vote vectors of ``k`` non-negative integers summing to ``n``: ``(C(n+k−1, k−1), k)``."""
    if k == 1:
        return np.array([[n]], dtype=np.int64)
    rows = []
    for first in range(n, -1, -1):
        rest = compositions(n - first, k - 1)
        rows.append(np.column_stack([np.full(len(rest), first), rest]))
    out = np.concatenate(rows)
    out.setflags(write=False)
    return out


def _log_prob_table(alpha: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """log p(n | α) for every vote vector: ``(G, T, K)`` × ``(M, K)`` -> ``(G, T, M)``,
    gathering the α terms from a table over 0..N (no ``(G, T, M, K)`` temporary)."""
    n_total = int(votes[0].sum())
    pass_terms, per_level = _alpha_terms(alpha, n_total)
    log_p = (gammaln(n_total + 1) - gammaln(votes + 1).sum(-1))[None, None, :] + pass_terms[..., None]
    for k in range(alpha.shape[-1]):
        log_p = log_p + per_level[:, :, k, :][:, :, votes[:, k]]
    return log_p


def _exact_mutual_information(alpha: np.ndarray, n_total: int) -> np.ndarray:
    """Exact I for a group of galaxies with the same integer N: ``(G, T, K)`` -> ``(G,)``."""
    votes = compositions(n_total, alpha.shape[-1])
    out = np.empty(alpha.shape[0])
    chunk = max(1, GALAXY_CHUNK_ELEMENTS // (alpha.shape[1] * len(votes)))
    for start in range(0, alpha.shape[0], chunk):
        log_p = _log_prob_table(alpha[start:start + chunk], votes)
        p = np.exp(log_p)
        log_mix = _logmeanexp(log_p, axis=1)  # (g, M)
        mixture_entropy = -(np.exp(log_mix) * log_mix).sum(-1)
        mean_entropy = -(p * log_p).sum(-1).mean(-1)
        out[start:start + chunk] = mixture_entropy - mean_entropy
    return np.maximum(out, 0.0)


def _alpha_terms(alpha: np.ndarray, n_total: int) -> tuple[np.ndarray, np.ndarray]:
    """The parts of log p(n | α) that depend on α: per pass ``lnΓ(A) − lnΓ(N+A)`` ``(G, T)`` and
    a table ``lnΓ(v+α_k) − lnΓ(α_k)`` for v = 0..N ``(G, T, K, N+1)`` to gather vote values from."""
    levels = np.arange(n_total + 1)
    conc = alpha.sum(-1)
    per_level = gammaln(levels + alpha[..., None]) - gammaln(alpha[..., None])
    return gammaln(conc) - gammaln(n_total + conc), per_level


def _logmeanexp(values: np.ndarray, axis: int) -> np.ndarray:
    peak = values.max(axis=axis, keepdims=True)
    return np.log(np.exp(values - peak).mean(axis=axis)) + np.squeeze(peak, axis=axis)


def _monte_carlo_mutual_information(alpha: np.ndarray, n_total: int, n_samples: int,
                                    rng: np.random.Generator) -> np.ndarray:
    """Unbiased MC estimate of I for galaxies sharing the integer N: ``(G, T, K)`` -> ``(G,)``.

    The multinomial coefficient of n is the same under every pass, so it cancels in
    log p(n | α_t) − log mean_s p(n | α_s) and is never computed.
    """
    n_gal, n_passes, n_answers = alpha.shape
    chosen = rng.integers(n_passes, size=(n_gal, n_samples))
    alpha_chosen = np.take_along_axis(alpha, chosen[..., None], axis=1)  # (G, S, K)
    gammas = rng.standard_gamma(alpha_chosen)
    votes = rng.multinomial(n_total, gammas / gammas.sum(-1, keepdims=True))  # (G, S, K)
    pass_terms, per_level = _alpha_terms(alpha, n_total)
    log_p = np.repeat(pass_terms[:, None, :], n_samples, axis=1)  # (G, S, T)
    for k in range(n_answers):
        table = per_level[:, :, k, :]  # (G, T, N+1)
        log_p += np.take_along_axis(table[:, None, :, :], votes[:, :, None, k:k + 1], axis=3)[..., 0]
    log_p_own = np.take_along_axis(log_p, chosen[..., None], axis=2)[..., 0]
    return (log_p_own - _logmeanexp(log_p, axis=2)).mean(-1)


def question_mutual_information(alpha: np.ndarray, n_votes: np.ndarray, *, exact_limit: int = DEFAULT_EXACT_LIMIT,
                                mc_samples: int = DEFAULT_MC_SAMPLES, seed: int = 0,
                                method: str = "auto") -> np.ndarray:
    """I_q for one question: ``alpha`` ``(G, T, K)``, integer votes ``(G,)`` -> ``(G,)``.

    ``method`` is ``auto`` (exact when at most ``exact_limit`` vote vectors), ``exact`` or ``mc``.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    n_votes = np.asarray(n_votes, dtype=np.int64)
    k = alpha.shape[-1]
    out = np.zeros(alpha.shape[0])
    rng = np.random.default_rng(seed)
    for n in np.unique(n_votes):
        if n <= 0:
            continue
        members = np.flatnonzero(n_votes == n)
        use_exact = method == "exact" or (method == "auto" and comb(int(n) + k - 1, k - 1) <= exact_limit)
        out[members] = (_exact_mutual_information(alpha[members], int(n)) if use_exact
                        else _monte_carlo_mutual_information(alpha[members], int(n), mc_samples, rng))
    return out


def expected_votes(concentrations: np.ndarray, schema: Schema, n_total: float) -> np.ndarray:
    """Expected votes reaching each question: ``n_total`` × reach probability, ``(G, Q)``."""
    return n_total * schema.reach_probabilities(mean_fractions(concentrations, schema))


def tree_bald(concentrations: np.ndarray, schema: Schema, n_total: float = 40, *,
              exact_limit: int = DEFAULT_EXACT_LIMIT, mc_samples: int = DEFAULT_MC_SAMPLES,
              seed: int = 0, per_question: bool = False) -> np.ndarray:
    """Expected information gain of showing each galaxy to ``n_total`` more volunteers.

    ``concentrations`` ``(G, T, A)`` -> ``(G,)`` (or ``(G, Q)`` with ``per_question``).
    """
    concentrations = np.asarray(concentrations, dtype=np.float64)
    votes = expected_votes(concentrations, schema, n_total)
    lower = np.floor(votes)
    weight = votes - lower
    scores = np.zeros(votes.shape)
    for qi, (start, stop) in enumerate(schema.question_slices):
        alpha = concentrations[:, :, start:stop]
        below = question_mutual_information(alpha, lower[:, qi], exact_limit=exact_limit,
                                            mc_samples=mc_samples, seed=seed + qi)
        needs_above = weight[:, qi] > 0
        above = np.zeros_like(below)
        if needs_above.any():
            above[needs_above] = question_mutual_information(
                alpha[needs_above], lower[needs_above, qi] + 1, exact_limit=exact_limit,
                mc_samples=mc_samples, seed=seed + 1000 + qi)
        scores[:, qi] = (1 - weight[:, qi]) * below + weight[:, qi] * above
    return scores if per_question else scores.sum(axis=1)


def single_vote_bald(concentrations: np.ndarray, schema: Schema) -> np.ndarray:
    """BALD of ONE more vote per question (Houlsby et al. 2011), weighted by the probability of
    reaching the question and summed: ``(G, T, A)`` -> ``(G,)``, in closed form (one vote of
    Dirichlet α_t is categorical with α_t / Σα_t). The cheap screen of a catalogue rescoring,
    and never above :func:`tree_bald` of the same samples (up to its Monte-Carlo noise): n votes
    tell at least what their first one does, and ``reach × I(1) ≤ N_q × I(1)`` below one vote."""
    concentrations = np.asarray(concentrations, dtype=np.float64)
    reach = schema.reach_probabilities(mean_fractions(concentrations, schema))
    scores = np.zeros(len(concentrations))
    for qi, (start, stop) in enumerate(schema.question_slices):
        alpha = concentrations[:, :, start:stop]
        shares = alpha / alpha.sum(-1, keepdims=True)  # (G, T, K)
        mixture = shares.mean(1)
        information = _entropy(mixture) - _entropy(shares).mean(1)
        scores += reach[:, qi] * np.maximum(information, 0.0)
    return scores


def _entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(-1)


def predictive_entropy(concentrations: np.ndarray, schema: Schema) -> np.ndarray:
    """Entropy of the next single vote per question (mean predicted fractions), weighted by the
    probability of reaching the question and summed: ``(G, T, A)`` -> ``(G,)``."""
    fractions = mean_fractions(concentrations, schema)
    reach = schema.reach_probabilities(fractions)
    plogp = np.where(fractions > 0, fractions * np.log(np.clip(fractions, 1e-300, None)), 0.0)
    entropy = np.stack([-plogp[:, start:stop].sum(-1) for start, stop in schema.question_slices], axis=-1)
    return (reach * entropy).sum(-1)


def random_scores(n: int, seed: int = 0) -> np.ndarray:
    """Uniform random scores: the 'spice' baseline that keeps the labelled set unbiased."""
    return np.random.default_rng(seed).random(n)


ACQUISITION_FUNCTIONS = ("bald", "entropy", "random")


def score(concentrations: np.ndarray, schema: Schema, method: str = "bald", *, n_total: float = 40,
          seed: int = 0) -> np.ndarray:
    if method == "bald":
        return tree_bald(concentrations, schema, n_total, seed=seed)
    if method == "entropy":
        return predictive_entropy(concentrations, schema)
    if method == "random":
        return random_scores(len(concentrations), seed)
    raise ValueError(f"unknown acquisition function '{method}' (choose from {', '.join(ACQUISITION_FUNCTIONS)})")
