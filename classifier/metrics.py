"""Evaluation against volunteer votes: fraction RMSE (and the Kaggle challenge RMSE for GZ2),
per-question accuracy on confident galaxies, confusion matrices and interval calibration.

Definitions (all per question q with N_q votes):
- ``rmse``: predicted vs observed vote fraction over every (galaxy, answer) whose question
  got at least one vote.
- ``rmse_kaggle``: RMSE over all 37 Kaggle values of each galaxy (share of all volunteers =
  conditional fraction × probability of reaching the question; "odd" counts as reached by
  everybody, as in the Kaggle data — see :mod:`classifier.kaggle`).
- accuracy / confusion: galaxies where the top answer has ≥ ``confident_fraction`` of
  N_q ≥ ``min_votes`` votes; the prediction is the answer with the highest mean fraction.
- calibration: ``vote_coverage`` is the share of observed vote counts inside the central
  ``interval`` of the posterior predictive (mixture over MC samples of Beta-Binomial(N_q, α_k,
  A−α_k)); with integer counts the interval is the conservative one, so ≥ nominal means
  calibrated. ``fraction_coverage`` checks the credible intervals of the fraction against the
  observed fraction; that fraction carries binomial noise, so it sits below nominal when N is small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import betaln, gammaln

from classifier import kaggle
from classifier.predict import DEFAULT_INTERVAL, credible_intervals, mean_fractions, question_totals
from classifier.schema import Schema


def _rmse(errors: np.ndarray) -> float | None:
    return float(np.sqrt(np.mean(errors ** 2))) if errors.size else None


def predictive_vote_intervals(concentrations: np.ndarray, votes: np.ndarray, schema: Schema,
                              interval: float = DEFAULT_INTERVAL, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Central predictive interval ``[low, high]`` of each answer's vote count given the question's
    total ``votes`` (``(G, A)``, broadcast per question), under the Beta-Binomial mixture."""
    concentrations = np.asarray(concentrations, dtype=np.float64)
    votes = np.rint(votes).astype(np.int64)
    n_max = int(votes.max()) if votes.size else 0
    n = np.arange(n_max + 1)
    tail = (1.0 - interval) / 2
    low = np.zeros(votes.shape, dtype=np.int64)
    high = np.zeros(votes.shape, dtype=np.int64)
    for start in range(0, concentrations.shape[0], chunk):
        a = concentrations[start:start + chunk][..., None]  # (g, T, A, 1)
        b = question_totals(concentrations[start:start + chunk], schema)[..., None] - a
        total = votes[start:start + chunk][:, None, :, None]
        valid = n <= total
        k = np.where(valid, n, 0)
        log_pmf = (gammaln(total + 1) - gammaln(k + 1) - gammaln(np.maximum(total - k, 0) + 1)
                   + betaln(k + a, np.maximum(total - k, 0) + b) - betaln(a, b))
        pmf = np.where(valid, np.exp(log_pmf), 0.0).mean(axis=1)  # (g, A, n)
        cdf = np.cumsum(pmf, axis=-1)
        low[start:start + chunk] = (cdf < tail - 1e-9).sum(-1)
        high[start:start + chunk] = np.minimum((cdf < 1 - tail - 1e-9).sum(-1), votes[start:start + chunk])
    return low, high


def evaluate(concentrations: np.ndarray, counts: np.ndarray, schema: Schema, *,
             reference_shares: np.ndarray | None = None, interval: float = DEFAULT_INTERVAL,
             confident_fraction: float = 0.8, min_votes: int = 10,
             lower: np.ndarray | None = None, upper: np.ndarray | None = None) -> dict[str, Any]:
    """Metrics of MC-dropout predictions ``(G, T, A)`` against vote ``counts`` ``(G, A)``.

    ``reference_shares`` are the Kaggle values when available (else derived from counts).
    ``lower``/``upper`` may pass precomputed credible intervals. Returns a JSON-serialisable dict.
    """
    counts = np.asarray(counts, dtype=np.float64)
    fractions = mean_fractions(concentrations, schema)
    votes = question_totals(counts, schema)
    observed = counts / np.maximum(votes, 1)
    if lower is None or upper is None:
        lower, upper = credible_intervals(concentrations, schema, interval)
    vote_low, vote_high = predictive_vote_intervals(concentrations, votes, schema, interval)
    answered = votes > 0
    well_voted = votes >= min_votes
    in_fraction_interval = (observed >= lower) & (observed <= upper)
    in_vote_interval = (counts >= vote_low) & (counts <= vote_high)

    questions: dict[str, Any] = {}
    for question in schema.tree.questions:
        key, start, stop = question.key, question.start, question.end
        q_votes = votes[:, start]
        q_observed = observed[:, start:stop]
        confident = (q_votes >= min_votes) & (q_observed.max(axis=1) >= confident_fraction)
        truth = q_observed[confident].argmax(axis=1)
        guess = fractions[confident, start:stop].argmax(axis=1)
        k = stop - start
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (truth, guess), 1)
        q_answered = answered[:, start]
        q_well = well_voted[:, start]
        questions[key] = {
            "answers": list(question.answer_keys),
            "n_confident": int(confident.sum()),
            "accuracy": float((truth == guess).mean()) if confident.any() else None,
            "rmse": _rmse((fractions - observed)[q_answered, start:stop]),
            "n_answered": int(q_answered.sum()),
            "fraction_coverage": float(in_fraction_interval[q_well, start:stop].mean()) if q_well.any() else None,
            "vote_coverage": float(in_vote_interval[q_well, start:stop].mean()) if q_well.any() else None,
            "confusion": confusion.tolist(),
        }
    result: dict[str, Any] = {
        "n_galaxies": int(counts.shape[0]),
        "n_samples": int(np.asarray(concentrations).shape[1]) if counts.shape[0] else 0,
        "rmse": _rmse((fractions - observed)[answered]),
        "calibration": {
            "interval": interval, "min_votes": min_votes,
            "fraction_coverage": float(in_fraction_interval[well_voted].mean()) if well_voted.any() else None,
            "vote_coverage": float(in_vote_interval[well_voted].mean()) if well_voted.any() else None,
        },
        "accuracy_settings": {"confident_fraction": confident_fraction, "min_votes": min_votes},
        "questions": questions,
    }
    if kaggle.supports_kaggle(schema):
        truth = reference_shares if reference_shares is not None else kaggle.counts_to_shares(counts, schema)
        result["rmse_kaggle"] = _rmse(kaggle.predicted_shares(fractions, schema) - truth)
    return result


def format_table(metrics: dict[str, Any]) -> str:
    """Human-readable metrics table for the CLI."""
    def fmt(value: Any, spec: str = ".3f") -> str:
        return "-" if value is None else format(value, spec)

    lines = [f"galaxies: {metrics['n_galaxies']}  rmse: {fmt(metrics['rmse'], '.4f')}"
             + (f"  rmse_kaggle: {fmt(metrics['rmse_kaggle'], '.4f')}" if "rmse_kaggle" in metrics else ""),
             f"calibration ({metrics['calibration']['interval']:.0%} intervals, >= {metrics['calibration']['min_votes']} votes): "
             f"vote coverage {fmt(metrics['calibration']['vote_coverage'])}, "
             f"fraction coverage {fmt(metrics['calibration']['fraction_coverage'])}",
             f"{'question':<22}{'confident':>10}{'accuracy':>10}{'rmse':>8}{'vote cov':>10}"]
    for key, q in metrics["questions"].items():
        lines.append(f"{key:<22}{q['n_confident']:>10}{fmt(q['accuracy']):>10}{fmt(q['rmse']):>8}"
                     f"{fmt(q['vote_coverage']):>10}")
    return "\n".join(lines)
