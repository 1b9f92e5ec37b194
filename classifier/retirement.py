"""Early retirement: stop collecting votes for a galaxy once the remaining volunteers can no
longer change the majority answer of any question that will matter.

The rule, per question q of the tree (details and the benchmark in ``docs/retirement.md``):

* The answer fractions of q get a Dirichlet posterior: ``votes + base_concentration`` per
  answer, plus ``prior_strength × model fractions`` when a model prior is given. Its mean
  also gives the probability ``r_q`` that a future volunteer reaches q (product of the
  fractions along the tree's paths).
* Of the ``R = max_votes − classifications`` volunteers still to come, ``Binomial(R, r_q)``
  reach q. The question only *matters* if it ends with at least ``min_scored_votes`` votes
  (with fewer, there is no majority worth keeping): ``P_scored = P(n_q + Binomial(R, r_q) ≥ k)``.
* If it is reached by ``M = max(⌈R r_q⌉, k − n_q)`` more volunteers, a rival answer j
  overtakes (or ties) the current leader L when ``n_j + m_j ≥ n_L + m_L``. Of the M, the pair
  {L, j} gets its expected share ``P = ⌈M (a_L + a_j) / A⌉``, and the split of a Dirichlet pair
  is Beta, so ``m_j ~ BetaBinomial(P, a_j, a_L)``:
  ``P_change = min(1, Σ_j P(m_j ≥ ⌈(n_L − n_j + P)/2⌉))`` (union bound over rivals); a
  question without votes, or with a tie, has no leader: 1.
* ``P_q = P_scored × P_change``; the galaxy is decisive when ``P_q ≤ threshold`` for every
  question (each question is held to the target on its own) and at least ``min_votes``
  volunteers classified it.

Everything is vectorised over galaxies (:meth:`RetirementRule.change_probabilities`) so the
benchmark can replay thousands of vote streams; :meth:`RetirementRule.is_decisive` is the
one-galaxy view the platform calls. Pure numpy/scipy: no torch, no Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln, gammaln
from scipy.stats import binom

from classifier.schema import Schema
from classifier.tree import DecisionTree

DEFAULT_MAX_VOTES = 40
DEFAULT_MIN_VOTES = 5
DEFAULT_THRESHOLD = 0.005
DEFAULT_MIN_SCORED_VOTES = 5
DEFAULT_BASE_CONCENTRATION = 0.5
DEFAULT_PRIOR_STRENGTH = 5.0


@dataclass(frozen=True)
class QuestionDecision:
    """Why one question does or does not block retirement."""

    question: str
    votes: int
    leader: str | None
    reach: float
    expected_remaining: float
    p_scored: float
    p_change: float
    probability: float
    decisive: bool


@dataclass(frozen=True)
class Decision:
    decisive: bool
    classifications: int
    remaining: int
    reason: str
    per_question: dict[str, QuestionDecision]


def betabinom_sf(x: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``P(X ≥ x)`` for ``X ~ BetaBinomial(n, a, b)``, elementwise over equal-shaped arrays.

    Summed over the pmf on a grid up to ``max(n)`` (votes per galaxy are at most a few
    dozen), which keeps it exact and vectorised.
    """
    x, n, a, b = (np.asarray(v, dtype=np.float64) for v in (x, n, a, b))
    if x.size == 0:
        return np.zeros(x.shape)
    grid = np.arange(int(n.max()) + 1, dtype=np.float64)
    k = grid[None, :]
    nn, aa, bb, xx = (v.reshape(-1, 1) for v in (n, a, b, x))
    valid = (k <= nn) & (k >= xx)
    kk = np.minimum(k, nn)
    log_pmf = (gammaln(nn + 1) - gammaln(kk + 1) - gammaln(nn - kk + 1)
               + betaln(kk + aa, nn - kk + bb) - betaln(aa, bb))
    return np.clip(np.where(valid, np.exp(log_pmf), 0.0).sum(axis=1), 0.0, 1.0).reshape(x.shape)


class RetirementRule:
    """A consensus stop rule for one decision tree.

    ``max_votes`` is the count-based retirement limit (the remaining volunteers are
    ``max_votes − classifications``); ``threshold`` the largest accepted probability that a
    question which will matter ends with a different majority; ``min_scored_votes`` the
    number of votes below which a question's final majority is not considered meaningful;
    ``questions`` restricts the rule to some questions (e.g. only the first, for comparison).
    """

    def __init__(self, tree: DecisionTree | Schema, *, max_votes: int = DEFAULT_MAX_VOTES,
                 min_votes: int = DEFAULT_MIN_VOTES, threshold: float = DEFAULT_THRESHOLD,
                 min_scored_votes: int = DEFAULT_MIN_SCORED_VOTES,
                 base_concentration: float = DEFAULT_BASE_CONCENTRATION,
                 questions: Sequence[str] | None = None):
        if max_votes < 1 or min_votes < 0 or not 0.0 < threshold < 1.0 or base_concentration <= 0:
            raise ValueError("need max_votes ≥ 1, min_votes ≥ 0, 0 < threshold < 1, base_concentration > 0")
        self.schema = tree if isinstance(tree, Schema) else Schema.from_tree(tree)
        self.tree = self.schema.tree
        self.max_votes = max_votes
        self.min_votes = min_votes
        self.threshold = threshold
        self.min_scored_votes = min_scored_votes
        self.base_concentration = base_concentration
        unknown = set(questions or ()) - set(self.schema.question_keys)
        if unknown:
            raise ValueError(f"unknown question(s) {sorted(unknown)}")
        self.questions = tuple(questions) if questions else self.schema.question_keys
        self._checked = np.array([k in self.questions for k in self.schema.question_keys])

    # ----------------------------------------------------------------- vectorised core
    def posterior(self, counts: np.ndarray, prior: np.ndarray | None = None,
                  prior_strength: float = DEFAULT_PRIOR_STRENGTH) -> np.ndarray:
        """Dirichlet parameters ``(G, A)``: votes + base concentration (+ model pseudo-votes)."""
        alpha = np.asarray(counts, dtype=np.float64) + self.base_concentration
        if prior is not None:
            alpha = alpha + prior_strength * self._normalised(np.asarray(prior, dtype=np.float64))
        return alpha

    def _normalised(self, fractions: np.ndarray) -> np.ndarray:
        out = np.empty_like(fractions)
        for start, stop in self.schema.question_slices:
            block = np.clip(fractions[:, start:stop], 0.0, None)
            total = block.sum(axis=1, keepdims=True)
            out[:, start:stop] = np.where(total > 0, block / np.where(total > 0, total, 1.0), 1.0 / (stop - start))
        return out

    def change_probabilities(self, counts: np.ndarray, classifications: np.ndarray | None = None,
                             max_votes: np.ndarray | int | None = None, prior: np.ndarray | None = None,
                             prior_strength: float = DEFAULT_PRIOR_STRENGTH) -> dict[str, np.ndarray]:
        """For ``G`` galaxies' counts ``(G, A)`` (schema answer order): per question ``(G, Q)``
        arrays ``probability`` (= ``p_scored × p_change``), ``p_scored``, ``p_change``,
        ``reach``, ``expected_remaining``, ``leader`` (answer index within the question, −1
        when there is no unique leader), plus ``remaining`` ``(G,)``."""
        counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        g = counts.shape[0]
        first = self.schema.question_slices[self.schema.first_index]
        if classifications is None:
            classifications = counts[:, first[0]:first[1]].sum(axis=1)
        limit = self.max_votes if max_votes is None else max_votes
        remaining = np.maximum(np.broadcast_to(np.asarray(limit, dtype=np.float64), (g,))
                               - np.asarray(classifications, dtype=np.float64), 0.0)
        alpha = self.posterior(counts, None if prior is None else np.atleast_2d(prior), prior_strength)
        totals = np.zeros_like(alpha)
        for start, stop in self.schema.question_slices:
            totals[:, start:stop] = alpha[:, start:stop].sum(axis=1, keepdims=True)
        reach = self.schema.reach_probabilities(alpha / totals)

        n_q = len(self.schema.question_slices)
        out = {name: np.zeros((g, n_q)) for name in ("probability", "p_scored", "p_change", "expected_remaining")}
        out["reach"] = reach
        out["leader"] = np.full((g, n_q), -1, dtype=np.int64)
        k = self.min_scored_votes
        for qi, (start, stop) in enumerate(self.schema.question_slices):
            votes = counts[:, start:stop]
            total = votes.sum(axis=1)
            expected = remaining * reach[:, qi]
            p_scored = np.where(total >= k, 1.0, binom.sf(k - total - 1, remaining, np.clip(reach[:, qi], 0, 1)))
            future = np.minimum(np.maximum(np.ceil(expected - 1e-9), k - total), remaining)
            future = np.maximum(future, 0.0)
            order = np.argsort(-votes, axis=1, kind="stable")
            lead = order[:, 0]
            lead_votes = votes[np.arange(g), lead]
            runner_up = votes[np.arange(g), order[:, 1]] if stop - start > 1 else np.full(g, -1.0)
            has_leader = (total > 0) & (lead_votes > runner_up)
            p_change = np.ones(g)
            rows = np.nonzero(has_leader)[0]
            if rows.size:
                p_change[rows] = self._overtake_probability(votes[rows], alpha[rows, start:stop], lead[rows],
                                                            future[rows])
            out["leader"][:, qi] = np.where(has_leader, lead, -1)
            out["p_scored"][:, qi] = p_scored
            out["p_change"][:, qi] = p_change
            out["expected_remaining"][:, qi] = expected
            out["probability"][:, qi] = np.where(self._checked[qi], p_scored * p_change, 0.0)
        out["remaining"] = remaining
        return out

    @staticmethod
    def _overtake_probability(votes: np.ndarray, alpha: np.ndarray, lead: np.ndarray, future: np.ndarray) -> np.ndarray:
        g, n_answers = votes.shape
        rows = np.arange(g)
        lead_votes, lead_alpha = votes[rows, lead], alpha[rows, lead]
        rival_mask = np.ones((g, n_answers), dtype=bool)
        rival_mask[rows, lead] = False
        r_rows, r_cols = np.nonzero(rival_mask)
        pair_alpha = alpha[r_rows, r_cols] + lead_alpha[r_rows]
        # Votes landing on the pair: its expected share of the M, rounded up.
        pair_votes = np.ceil(future[r_rows] * pair_alpha / alpha[r_rows].sum(axis=1) - 1e-9)
        needed = np.ceil((lead_votes[r_rows] - votes[r_rows, r_cols] + pair_votes) / 2)
        tail = np.where(needed > pair_votes, 0.0,
                        betabinom_sf(needed, pair_votes, alpha[r_rows, r_cols], lead_alpha[r_rows]))
        return np.minimum(np.bincount(r_rows, weights=tail, minlength=g), 1.0)

    def decisive_mask(self, counts: np.ndarray, classifications: np.ndarray | None = None,
                      max_votes: np.ndarray | int | None = None, prior: np.ndarray | None = None,
                      prior_strength: float = DEFAULT_PRIOR_STRENGTH) -> np.ndarray:
        """``(G,)`` booleans: may each galaxy retire now?"""
        counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        first = self.schema.question_slices[self.schema.first_index]
        if classifications is None:
            classifications = counts[:, first[0]:first[1]].sum(axis=1)
        result = self.change_probabilities(counts, classifications, max_votes, prior, prior_strength)
        settled = result["probability"].max(axis=1) <= self.threshold
        enough = np.asarray(classifications) >= self.min_votes
        return (enough & settled) | (result["remaining"] <= 0)

    # ----------------------------------------------------------------- one galaxy
    def is_decisive(self, vote_counts: Mapping[str, int], prior: Mapping[str, float] | None = None,
                    prior_strength: float = DEFAULT_PRIOR_STRENGTH, classifications: int | None = None,
                    max_votes: int | None = None) -> Decision:
        """Decide for one galaxy. ``prior`` is the model's predicted answer fractions by
        column (e.g. ``{"smooth-or-featured_smooth": 0.8, ...}``); ``classifications``
        defaults to the votes on the first question."""
        counts = self.tree.counts_vector(vote_counts)[None, :]
        prior_array = None if prior is None else self.tree.counts_vector(prior)[None, :]
        first = self.schema.question_slices[self.schema.first_index]
        n = int(counts[0, first[0]:first[1]].sum()) if classifications is None else int(classifications)
        limit = self.max_votes if max_votes is None else max_votes
        result = self.change_probabilities(counts, np.array([n]), limit, prior_array, prior_strength)
        per_question = {}
        for qi, question in enumerate(self.schema.tree.questions):
            if question.key not in self.questions:
                continue
            leader = int(result["leader"][0, qi])
            probability = float(result["probability"][0, qi])
            start, stop = self.schema.question_slices[qi]
            per_question[question.key] = QuestionDecision(
                question=question.key, votes=int(counts[0, start:stop].sum()),
                leader=question.answers[leader].key if leader >= 0 else None,
                reach=float(result["reach"][0, qi]), expected_remaining=float(result["expected_remaining"][0, qi]),
                p_scored=float(result["p_scored"][0, qi]), p_change=float(result["p_change"][0, qi]),
                probability=probability, decisive=probability <= self.threshold)
        remaining = int(result["remaining"][0])
        if remaining <= 0:
            return Decision(True, n, 0, "reached max_votes", per_question)
        if n < self.min_votes:
            return Decision(False, n, remaining, f"fewer than min_votes={self.min_votes} classifications",
                            per_question)
        blocking = [q.question for q in per_question.values() if not q.decisive]
        if blocking:
            return Decision(False, n, remaining, "majority may still change: " + ", ".join(blocking), per_question)
        return Decision(True, n, remaining, "every question's majority is settled", per_question)
