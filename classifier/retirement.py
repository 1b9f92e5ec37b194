"""Early retirement: stop collecting votes for a galaxy once the remaining volunteers can no
longer change the majority answer of any question that will matter.

The rule, per question q of the tree (details, levers and the out-of-sample benchmark in
``docs/retirement.md``):

* The answer fractions of q get a Dirichlet posterior: ``votes + base_concentration`` per
  answer, plus ``prior_strength × model fractions`` when a model prior is given.
* Of the ``R = max_votes − classifications`` volunteers still to come, some reach q. With
  ``reach="tree"`` that number is Binomial with ``r_q``, the product of the posterior-mean
  fractions along the tree's paths (the first implementation). With ``reach="observed"``
  (default) it is Beta-Binomial: q was reached by ``N_q`` of the ``n`` volunteers so far, so
  its reach probability is ``Beta(N_q + r_q, n − N_q + 1 − r_q)`` (``r_q`` worth one volunteer). The question only *matters* if it ends with at
  least ``min_scored_votes`` votes: ``P_scored = P(N_q + reached ≥ k)``.
* If it is reached by ``M = max(⌈expected reached⌉, k − N_q)`` more volunteers, a rival answer
  j overtakes (or ties) the leader L when ``n_j + m_j ≥ n_L + m_L``. The pair {L, j} gets its
  expected share ``P = ⌈M (a_L + a_j) / A⌉`` and the split of a Dirichlet pair is Beta, so
  ``m_j ~ BetaBinomial(P, a_j, a_L)``: ``P_change = min(1, Σ_j P(m_j ≥ ⌈(n_L − n_j + P)/2⌉))``
  (union bound over rivals); a question without votes, or with a tie, has no leader: 1.
* ``P_q = P_scored × P_change``; the galaxy is decisive when ``P_q ≤ threshold_q`` for every
  question (``threshold`` is one number or one per question) and at least ``min_votes``
  volunteers classified it. With ``blocking="majority-path"`` (a workflow's weaker promise,
  its ``retirement_agreement``) only the questions on the current majority path count, with
  their own tuned thresholds.

Everything that depends only on the tree (answer→question maps, reach order) is built once
per tree version and shared; a full pass is ~60 numpy calls on ``(G, answers)`` arrays, whether
``G`` is one galaxy or a whole replay (:meth:`RetirementRule.change_probabilities`). The
platform's one-galaxy call, :meth:`RetirementRule.decides`, avoids most of them: a galaxy whose
first question blocks is found in a table of those tallies, one whose blocking question was seen
on another galaxy with the same votes on it and above it in a memo, and rivals' tails are
remembered by their arguments — each exact, not an approximation (tests). Pure numpy/scipy: no
torch, no Django.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import betaln

from classifier.schema import Schema
from classifier.tree import DecisionTree

DEFAULT_MAX_VOTES = 40
DEFAULT_MIN_VOTES = 5
DEFAULT_THRESHOLD = 0.005
DEFAULT_MIN_SCORED_VOTES = 5
DEFAULT_BASE_CONCENTRATION = 0.5
DEFAULT_PRIOR_STRENGTH = 5.0
DEFAULT_REACH = "observed"
# Per-question thresholds of the shipped trees, chosen on one half of the real vote sets
# (GZ2 Stripe 82 for gz2, GZ DECaLS for decals_dr5; 5 stream seeds pooled) to save the most
# votes while every question keeps ≥ 99% + 1 SE agreement, and reported on the other half
# in docs/retirement.md. Rebuild: tests/benchmarks/retirement_benchmark.py ("shipped defaults").
# Capped at 0.1; a question at the cap is rarely the one still open when the others settle.
TUNED_THRESHOLDS: dict[str, dict[str, float]] = {
    "gz2": {"smooth-or-features": 0.00972, "edge-on": 0.1, "bar": 0.1, "spiral": 0.1, "bulge-prominence": 0.01434,
            "odd": 0.1, "how-rounded": 0.01434, "odd-feature": 0.00543, "bulge-shape": 0.00543, "arm-winding": 0.1,
            "arm-count": 0.1},
    "decals_dr5": {"smooth-or-featured": 0.1, "disk-edge-on": 0.00303, "has-spiral-arms": 0.1, "bar": 0.06781,
                   "bulge-size": 0.00659, "how-rounded": 0.00543, "edge-on-bulge": 0.01181, "spiral-winding": 0.1,
                   "spiral-arm-count": 0.00543, "merging": 0.00447},
}
# The same for blocking="majority-path" (only the questions on the galaxy's current majority path
# may hold it, a workflow's retirement_agreement="majority-path"): tuned on the same half 0 for
# agreement on the full votes' majority path, each question's Wilson lower bound (z = 1.645) ≥ 99%
# there; a question with too few path galaxies to show that even without an error (DECaLS
# edge-on-bulge, GZ2 bulge-shape) keeps the grid's smallest threshold. Rebuild:
# tests/benchmarks/retirement_promises.py (its "ship" line); figures in docs/retirement.md.
TUNED_PATH_THRESHOLDS: dict[str, dict[str, float]] = {
    "gz2": {"smooth-or-features": 0.05584, "edge-on": 0.1, "bar": 0.1, "spiral": 0.1, "bulge-prominence": 0.08235,
            "odd": 0.03787, "how-rounded": 0.03787, "odd-feature": 0.04599, "bulge-shape": 0.0002, "arm-winding": 0.06781,
            "arm-count": 0.04599},
    "decals_dr5": {"smooth-or-featured": 0.03118, "disk-edge-on": 0.1, "has-spiral-arms": 0.1, "bar": 0.1,
                   "bulge-size": 0.00543, "how-rounded": 0.00543, "edge-on-bulge": 0.0002, "spiral-winding": 0.06781,
                   "spiral-arm-count": 0.01181, "merging": 0.00543},
}
REACH_MODELS = ("observed", "observed-flat", "tree")
# Which questions may block: "every" question that will be scored (the default: the promise is
# judged on every question's majority), or only those on the current "majority-path" (the answers
# a consensus catalogue keeps: a close bar vote no longer holds a galaxy whose majority says
# smooth). Measured in docs/retirement.md (retirement_promises.py); a workflow chooses it with its
# retirement_agreement, the platform's default stays "every".
BLOCKING = ("every", "majority-path")
_CACHE_SIZE = 64
# Blocking questions remembered per rule by RetirementRule.decides, a few hundred bytes each:
# at most ~20 MB per process. A full replay of the 14,734 Stripe 82 streams (~300k checks) keeps
# about as many (docs/retirement.md, "Cost per check").
BLOCKER_MEMO_SIZE = 1 << 16
# The first question's tallies are few (11,445 from 5 to 39 votes over 3 answers), so a rule
# decides them all in one vectorised pass when a process first needs them, and a check whose
# first question blocks (39% of the API benchmark's checks at 5–6 votes) is one set lookup from a
# worker's first request on (gunicorn recycles workers every 5,000 requests, which empties the
# memo). Trees whose first question has more tallies than this rely on the memo alone.
FIRST_QUESTION_TABLE_ROWS = 200_000


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
    threshold: float
    decisive: bool


@dataclass(frozen=True)
class Decision:
    decisive: bool
    classifications: int
    remaining: int
    reason: str
    per_question: dict[str, QuestionDecision]


def _log_beta_binomial_pmf(k: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log P(X = k)`` for ``X ~ BetaBinomial(n, a, b)`` (``-inf`` outside ``0..n``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = (k >= 0) & (k <= n)
        kk, nk = np.where(inside, k, 0), np.where(inside, n - k, 0)
        log_choose = _log_factorial(n) - _log_factorial(kk) - _log_factorial(nk)
        return np.where(inside, log_choose + betaln(kk + a, nk + b) - betaln(a, b), -np.inf)


def _log_factorial(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    return _log_factorial_table(max(1024, 1 << int(values.max(initial=0)).bit_length()))[values]


@lru_cache(maxsize=8)
def _log_factorial_table(size: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, size + 1, dtype=np.float64)))])


def betabinom_sf(x: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``P(X ≥ x)`` for ``X ~ BetaBinomial(n, a, b)``, elementwise over equal-shaped arrays.

    The pmf on a grid up to ``max(n)`` comes from one ``betaln`` per element and the ratio
    recursion ``pmf(k+1)/pmf(k) = (n−k)(k+a) / ((k+1)(n−k−1+b))`` in log space (votes per
    galaxy are a few dozen), so it stays exact and costs a few vector operations.
    """
    x, n, a, b = (np.asarray(v, dtype=np.float64) for v in (x, n, a, b))
    shape = x.shape
    x, n, a, b = (v.reshape(-1, 1) for v in (x, n, a, b))
    if x.size == 0:
        return np.zeros(shape)
    grid = np.arange(int(n.max()) + 1, dtype=np.float64)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.log((n - grid[:, :-1]) * (grid[:, :-1] + a)) - np.log((grid[:, :-1] + 1) * (n - grid[:, :-1] - 1 + b))
        log_ratio = np.where(grid[:, :-1] < n, log_ratio, -np.inf)
    log_pmf0 = betaln(a, n + b) - betaln(a, b)
    log_pmf = log_pmf0 + np.concatenate([np.zeros_like(log_pmf0), np.cumsum(log_ratio, axis=1)], axis=1)
    pmf = np.where(grid >= x, np.exp(log_pmf), 0.0)
    return np.clip(_row_sums(pmf), 0.0, 1.0).reshape(shape)


# Rivals' tails P(m_j ≥ needed) of one galaxy's check, remembered by their four arguments (with
# the default pseudo-votes they are whole or half numbers ≤ 41, so a few thousand recur across
# galaxies and questions): a cached tail is a dict lookup instead of ~70 µs of the ~220 µs full
# pass. A batch (replays, benchmarks) computes them, as it would gain nothing from the lookups.
_TAILS: dict[tuple[float, float, float, float], float] = {}
TAIL_CACHE_SIZE = 1 << 18
_FEW_TAILS = 64


def cached_betabinom_sf(x: np.ndarray, n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`betabinom_sf` of 1-D arrays, each value looked up or computed and remembered; the
    same values to the last bit, since each element's tail does not depend on the others'."""
    if x.size > _FEW_TAILS:
        return betabinom_sf(x, n, a, b)
    keys = list(zip(x.tolist(), n.tolist(), a.tolist(), b.tolist(), strict=True))
    values = [_TAILS.get(key) for key in keys]
    missing = [i for i, value in enumerate(values) if value is None]
    if missing:
        computed = betabinom_sf(x[missing], n[missing], a[missing], b[missing]).tolist()
        if len(_TAILS) + len(missing) > TAIL_CACHE_SIZE:
            _TAILS.clear()
        for i, value in zip(missing, computed, strict=True):
            values[i] = _TAILS[keys[i]] = value
    return np.array(values, dtype=np.float64)


def _row_sums(values: np.ndarray) -> np.ndarray:
    """Row sums added left to right, so that the zeros padding a row to the longest one in the
    batch change nothing: a question's probability is then the same to the last bit whatever the
    other questions' grids (``sum``'s pairwise order depends on the row length), which
    ``RetirementRule.decides``' memo relies on."""
    return np.cumsum(values, axis=1)[:, -1]


def _compositions(total: int, parts: int):
    """Every tuple of ``parts`` non-negative integers summing to ``total`` (stars and bars)."""
    for bars in itertools.combinations(range(total + parts - 1), parts - 1):
        edges = (-1, *bars, total + parts - 1)
        yield tuple(edges[i + 1] - edges[i] - 1 for i in range(parts))


class _TreeArrays:
    """Index arrays of one tree, built once per tree version (see :func:`_tree_arrays`)."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.starts = np.array([start for start, _ in schema.question_slices], dtype=np.intp)
        self.answer_question = np.asarray(schema.answer_question, dtype=np.intp)
        self.answer_index = np.arange(schema.n_answers)
        self.first = schema.question_slices[schema.first_index]
        # Every path from the first question, as the answers taken and the question it reaches:
        # reach = exp(log fractions @ path_answers) @ path_ends, two products instead of a
        # loop over the tree (the tree is a DAG with at most a few hundred such paths).
        incoming: dict[int, list[tuple[int, int]]] = {}
        for dep in schema.dependencies:
            incoming.setdefault(dep.question, []).append((dep.parent, dep.answer_index))
        paths: dict[int, list[tuple[int, ...]]] = {schema.first_index: [()]}
        for qi in schema.topological_indices:
            if qi != schema.first_index:
                paths[qi] = [p + (a,) for parent, a in incoming.get(qi, []) for p in paths.get(parent, [])]
        every = [(qi, p) for qi in range(schema.n_questions) for p in paths.get(qi, []) if p]
        self.path_answers = np.zeros((schema.n_answers, len(every)))
        self.path_ends = np.zeros((len(every), schema.n_questions))
        for column, (qi, path) in enumerate(every):
            self.path_answers[list(path), column] = 1.0
            self.path_ends[column, qi] = 1.0
        self.column_position = {column: i for i, column in enumerate(schema.answer_columns)}
        # The tree's edges (parent question, answer, child question) for the majority path,
        # propagated level by level: one (E,) gather and one (E, Q) product per level.
        self.edge_parent = np.array([dep.parent for dep in schema.dependencies], dtype=np.intp)
        self.edge_answer = np.array([dep.answer_index for dep in schema.dependencies], dtype=np.intp)
        self.edge_child = np.zeros((len(schema.dependencies), schema.n_questions))
        self.edge_child[np.arange(len(schema.dependencies)), [dep.question for dep in schema.dependencies]] = 1.0
        self.depth = max((len(path) for options in paths.values() for path in options), default=0)
        # A question's probability and whether it is on the majority path depend only on the votes
        # for its own answers and for those of the questions above it (reach, path), on the
        # classifications and on max_votes. Those answers per question, in topological order, with
        # a getter of their votes: the keys of RetirementRule.decides' memo.
        above: dict[int, set[int]] = {qi: set() for qi in range(schema.n_questions)}
        for qi in schema.topological_indices:
            for parent, _answer in incoming.get(qi, []):
                above[qi] |= above[parent] | {parent}
        self.scope_answers = {qi: tuple(a for q in sorted(above[qi] | {qi}) for a in range(*schema.question_slices[q]))
                              for qi in schema.topological_indices}
        self.scopes = tuple((qi, operator.itemgetter(*answers)) for qi, answers in self.scope_answers.items())
        # Narrower, when only the reach prior needs the questions above (blocking="every"): that
        # prior takes, per answer on a path to the question, its votes and its question's total.
        # So the votes on the question itself and on those path answers, and the path questions'
        # totals. The totals are the same number whatever their split only when every
        # pseudo-vote's sum is exact in floating point (RetirementRule._narrow_keys).
        on_path: dict[int, set[int]] = {qi: set() for qi in range(schema.n_questions)}
        for qi in schema.topological_indices:
            for parent, answer in incoming.get(qi, []):
                on_path[qi] |= on_path[parent] | {answer}
        self.answers_on_path = {qi: tuple(sorted(on_path[qi])) for qi in schema.topological_indices}
        self.questions_on_path = {qi: tuple(sorted({int(self.answer_question[a]) for a in answers}))
                               for qi, answers in self.answers_on_path.items()}
        self.narrow_scopes = tuple(
            (qi, operator.itemgetter(*range(*schema.question_slices[qi]), *self.answers_on_path[qi]),
             operator.itemgetter(*self.questions_on_path[qi]) if self.questions_on_path[qi] else None)
            for qi in schema.topological_indices)


_TREES: OrderedDict[str, _TreeArrays] = OrderedDict()
_RULES: OrderedDict[tuple, RetirementRule] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _remember(cache: OrderedDict, key, build):
    """The cached value, without a lock on a hit (one per counted vote): the oldest entry goes
    first when the cache is full."""
    value = cache.get(key)
    if value is not None:
        return value
    value = build()
    with _CACHE_LOCK:
        cache[key] = value
        while len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return value


def _tree_arrays(tree: DecisionTree | Schema) -> _TreeArrays:
    schema = tree if isinstance(tree, Schema) else None
    version = (schema.tree if schema else tree).version_hash
    return _remember(_TREES, version, lambda: _TreeArrays(schema or Schema.from_tree(tree)))


def _freeze(value):
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


class RetirementRule:
    """A consensus stop rule for one decision tree.

    ``max_votes`` is the count-based retirement limit (the remaining volunteers are
    ``max_votes − classifications``); ``threshold`` the largest accepted probability that a
    question which will matter ends with a different majority — one number, or a mapping
    ``{question: threshold}`` (questions not named get ``DEFAULT_THRESHOLD``); by default the
    tuned ``TUNED_THRESHOLDS`` of a shipped tree (``TUNED_PATH_THRESHOLDS`` under
    ``blocking="majority-path"``: each promise is tuned for itself), else ``DEFAULT_THRESHOLD``;
    ``min_scored_votes`` the number of votes below which a question's final majority is not
    considered meaningful; ``base_concentration`` the Dirichlet pseudo-votes per answer (one
    number, or a mapping by question and/or answer column, e.g. a population prior); ``reach`` how future volunteers reaching a question are
    modelled (``"observed"``, ``"observed-flat"`` or ``"tree"``); ``questions`` restricts the rule to some
    questions (e.g. only the first, for comparison); ``blocking`` which questions may hold a galaxy
    (``"every"``, or only those on the current ``"majority-path"``). Use :meth:`cached` on hot paths.
    """

    def __init__(self, tree: DecisionTree | Schema, *, max_votes: int = DEFAULT_MAX_VOTES,
                 min_votes: int = DEFAULT_MIN_VOTES, threshold: float | Mapping[str, float] | None = None,
                 min_scored_votes: int = DEFAULT_MIN_SCORED_VOTES,
                 base_concentration: float | Mapping[str, float] = DEFAULT_BASE_CONCENTRATION,
                 reach: str = DEFAULT_REACH, questions: Sequence[str] | None = None, blocking: str = "every"):
        self._arrays = _tree_arrays(tree)
        self.schema = self._arrays.schema
        self.tree = self.schema.tree
        keys = self.schema.question_keys
        if threshold is None:
            tuned = (TUNED_PATH_THRESHOLDS if blocking == "majority-path" else TUNED_THRESHOLDS).get(self.tree.name, {})
            threshold = tuned if tuned and set(tuned) == set(keys) else DEFAULT_THRESHOLD
        thresholds = self._per_question(threshold, DEFAULT_THRESHOLD, "threshold")
        concentrations = self._per_answer(base_concentration)
        if max_votes < 1 or min_votes < 0 or min_scored_votes < 0:
            raise ValueError("need max_votes ≥ 1, min_votes ≥ 0 and min_scored_votes ≥ 0")
        if not ((thresholds > 0) & (thresholds < 1)).all() or not (concentrations > 0).all():
            raise ValueError("need 0 < threshold < 1 for every question and base_concentration > 0 for every answer")
        if reach not in REACH_MODELS:
            raise ValueError(f"reach must be one of {REACH_MODELS}, not {reach!r}")
        if blocking not in BLOCKING:
            raise ValueError(f"blocking must be one of {BLOCKING}, not {blocking!r}")
        unknown = set(questions or ()) - set(keys)
        if unknown:
            raise ValueError(f"unknown question(s) {sorted(unknown)}")
        self.max_votes = max_votes
        self.min_votes = min_votes
        self.threshold = threshold
        self.thresholds = thresholds
        self.min_scored_votes = min_scored_votes
        self.base_concentration = base_concentration
        self.answer_concentration = concentrations
        self.reach = reach
        self.blocking = blocking
        self.questions = tuple(questions) if questions else keys
        self._checked = np.array([k in self.questions for k in keys])
        self._blockers: OrderedDict[tuple, bool] = OrderedDict()
        self._first_blockers: frozenset[tuple] | None = None
        # Sums of whole votes and pseudo-votes that are multiples of 1/1024 are exact, so a
        # question's total is then the same float whatever the split of its votes.
        self._narrow_keys = blocking == "every" and bool(np.all(concentrations * 1024 == np.round(concentrations * 1024)))

    @classmethod
    def cached(cls, tree: DecisionTree | Schema, **options) -> RetirementRule:
        """The rule for ``tree`` and ``options``, built once per (tree version, options) and
        shared (a rule is immutable), so the per-vote check pays no set-up."""
        version = (tree.tree if isinstance(tree, Schema) else tree).version_hash
        key = (version, _freeze(options))
        return _remember(_RULES, key, lambda: cls(tree, **options))

    def _per_question(self, value: float | Mapping[str, float], default: float, name: str) -> np.ndarray:
        keys = self.schema.question_keys
        if isinstance(value, Mapping):
            unknown = set(value) - set(keys)
            if unknown:
                raise ValueError(f"{name}: unknown question(s) {sorted(unknown)}")
            return np.array([float(value.get(k, default)) for k in keys])
        return np.full(len(keys), float(value))

    def _per_answer(self, value: float | Mapping[str, float]) -> np.ndarray:
        """Pseudo-votes per answer from one number, or a mapping by question key and/or
        answer column (a column overrides its question; unnamed ones get the default)."""
        if not isinstance(value, Mapping):
            return np.full(self.schema.n_answers, float(value))
        unknown = set(value) - set(self.schema.question_keys) - set(self.schema.answer_columns)
        if unknown:
            raise ValueError(f"base_concentration: unknown question(s) or answer column(s) {sorted(unknown)}")
        by_question = self._per_question({k: v for k, v in value.items() if k in self.schema.question_keys},
                                         DEFAULT_BASE_CONCENTRATION, "base_concentration")
        out = by_question[self._arrays.answer_question]
        for column, a0 in value.items():
            if column in self._arrays.column_position:
                out[self._arrays.column_position[column]] = float(a0)
        return out

    # ----------------------------------------------------------------- vectorised core
    def posterior(self, counts: np.ndarray, prior: np.ndarray | None = None,
                  prior_strength: float = DEFAULT_PRIOR_STRENGTH) -> np.ndarray:
        """Dirichlet parameters ``(G, A)``: votes + base concentration (+ model pseudo-votes)."""
        alpha = np.asarray(counts, dtype=np.float64) + self.answer_concentration
        if prior is not None:
            alpha = alpha + prior_strength * self._normalised(np.asarray(prior, dtype=np.float64))
        return alpha

    def _normalised(self, fractions: np.ndarray) -> np.ndarray:
        arrays = self._arrays
        block = np.clip(fractions, 0.0, None)
        total = np.add.reduceat(block, arrays.starts, axis=1)[:, arrays.answer_question]
        sizes = np.diff(np.append(arrays.starts, self.schema.n_answers))[arrays.answer_question]
        return np.where(total > 0, block / np.where(total > 0, total, 1.0), 1.0 / sizes)

    def _reach_tree(self, fractions: np.ndarray) -> np.ndarray:
        arrays = self._arrays
        reach = np.exp(np.log(fractions) @ arrays.path_answers) @ arrays.path_ends
        reach[:, self.schema.first_index] = 1.0
        return reach

    def change_probabilities(self, counts: np.ndarray, classifications: np.ndarray | None = None,
                             max_votes: np.ndarray | int | None = None, prior: np.ndarray | None = None,
                             prior_strength: float = DEFAULT_PRIOR_STRENGTH) -> dict[str, np.ndarray]:
        """For ``G`` galaxies' counts ``(G, A)`` (schema answer order): per question ``(G, Q)``
        arrays ``probability`` (= ``p_scored × p_change``, 0 for questions the rule ignores),
        ``p_scored``, ``p_change``, ``reach``, ``expected_remaining``, ``leader`` (answer index
        within the question, −1 when there is no unique leader), plus ``remaining`` ``(G,)``."""
        arrays = self._arrays
        counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        g = counts.shape[0]
        if classifications is None:
            classifications = counts[:, arrays.first[0]:arrays.first[1]].sum(axis=1)
        classifications = np.broadcast_to(np.asarray(classifications, dtype=np.float64), (g,))
        limit = np.broadcast_to(np.asarray(self.max_votes if max_votes is None else max_votes, dtype=np.float64), (g,))
        remaining = np.maximum(limit - classifications, 0.0)
        alpha = self.posterior(counts, None if prior is None else np.atleast_2d(prior), prior_strength)
        aq, starts = arrays.answer_question, arrays.starts
        alpha_q = np.add.reduceat(alpha, starts, axis=1)
        votes_q = np.add.reduceat(counts, starts, axis=1)
        k = self.min_scored_votes
        short = np.maximum(k - votes_q, 0.0)
        rem = np.broadcast_to(remaining[:, None], votes_q.shape)
        reach = np.clip(self._reach_tree(alpha / alpha_q[:, aq]), 0.0, 1.0)
        if self.reach != "tree":
            # Worth one volunteer, the tree's estimate keeps an unreached deep question
            # below its parents; the question's own reach count soon dominates. "observed-flat"
            # (Beta(½, ½) instead) is kept as a measured lever: docs/retirement.md.
            prior_reach = np.clip(reach, 1e-6, 1 - 1e-6) if self.reach == "observed" else np.full_like(reach, 0.5)
            reach_a = votes_q + prior_reach
            reach_b = np.maximum(classifications[:, None] - votes_q, 0.0) + 1 - prior_reach
            reach = reach_a / (reach_a + reach_b)
        reach[:, self.schema.first_index] = 1.0
        expected = remaining[:, None] * reach
        p_scored = np.ones_like(votes_q)
        unsure = np.nonzero((short > 0) & (rem >= short))
        p_scored[(short > 0) & (rem < short)] = 0.0
        if unsure[0].size:
            p_scored[unsure] = self._reach_sf(short[unsure], rem[unsure], reach[unsure],
                                              None if self.reach == "tree" else (reach_a[unsure], reach_b[unsure]))
        future = np.minimum(np.maximum(np.ceil(expected - 1e-9), short), rem)

        top = np.maximum.reduceat(counts, starts, axis=1)
        is_top = counts == top[:, aq]
        has_leader = (votes_q > 0) & (np.add.reduceat(is_top, starts, axis=1) == 1)
        leader = np.minimum.reduceat(np.where(is_top, arrays.answer_index, self.schema.n_answers), starts, axis=1)
        leader_by_answer = np.minimum(leader, self.schema.n_answers - 1)[:, aq]
        rows = np.arange(g)[:, None]
        lead_alpha = alpha[rows, leader_by_answer]
        pair_votes = np.ceil(future[:, aq] * (lead_alpha + alpha) / alpha_q[:, aq] - 1e-9)
        needed = np.ceil((top[:, aq] - counts + pair_votes) / 2)
        live = has_leader[:, aq] & (arrays.answer_index != leader_by_answer) & (needed <= pair_votes)
        tail = np.zeros_like(counts)
        where = np.nonzero(live)
        if where[0].size:
            tail[where] = cached_betabinom_sf(needed[where], pair_votes[where], alpha[where], lead_alpha[where])
        p_change = np.where(has_leader, np.minimum(np.add.reduceat(tail, starts, axis=1), 1.0), 1.0)
        checked = self._checked if self.blocking == "every" else self._checked & self._majority_path(is_top, has_leader)
        return {"probability": np.where(checked, p_scored * p_change, 0.0), "p_scored": p_scored,
                "p_change": p_change, "reach": reach, "expected_remaining": expected,
                "leader": np.where(has_leader, leader - starts, -1), "remaining": remaining}

    def _majority_path(self, is_top: np.ndarray, has_leader: np.ndarray) -> np.ndarray:
        """``(G, Q)``: the first question, then each question a unique leader leads to."""
        arrays = self._arrays
        on_edge = (is_top & has_leader[:, arrays.answer_question])[:, arrays.edge_answer]
        path = np.zeros(has_leader.shape)
        path[:, self.schema.first_index] = 1.0
        for _ in range(arrays.depth):
            path = np.maximum(path, ((path[:, arrays.edge_parent] > 0) & on_edge) @ arrays.edge_child)
        return path > 0

    @staticmethod
    def _reach_sf(short: np.ndarray, remaining: np.ndarray, reach: np.ndarray,
                  beta: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        """``P(reached ≥ short)`` with ``reached ~ Binomial(remaining, reach)`` or, given
        ``beta``, ``BetaBinomial(remaining, *beta)``; ``short`` is at most ``min_scored_votes``."""
        grid = np.arange(int(short.max()), dtype=np.float64)[None, :]
        n, s = remaining[:, None], short[:, None]
        if beta is None:
            p = reach[:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                log_choose = _log_factorial(n) - _log_factorial(grid) - _log_factorial(np.maximum(n - grid, 0))
                log_pmf = log_choose + grid * np.log(p) + (n - grid) * np.log1p(-p)
            pmf = np.where(grid <= n, np.exp(np.nan_to_num(log_pmf, nan=-np.inf)), 0.0)
        else:
            pmf = np.exp(_log_beta_binomial_pmf(grid, n, beta[0][:, None], beta[1][:, None]))
        below = _row_sums(np.where(grid < s, pmf, 0.0))
        return np.clip(1.0 - below, 0.0, 1.0)

    def decisive_mask(self, counts: np.ndarray, classifications: np.ndarray | None = None,
                      max_votes: np.ndarray | int | None = None, prior: np.ndarray | None = None,
                      prior_strength: float = DEFAULT_PRIOR_STRENGTH) -> np.ndarray:
        """``(G,)`` booleans: may each galaxy retire now?"""
        counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
        if classifications is None:
            first = self._arrays.first
            classifications = counts[:, first[0]:first[1]].sum(axis=1)
        result = self.change_probabilities(counts, classifications, max_votes, prior, prior_strength)
        return self.decide(result["probability"], classifications, result["remaining"])

    def decide(self, probability: np.ndarray, classifications: np.ndarray, remaining: np.ndarray) -> np.ndarray:
        """The decision from per-question probabilities ``(..., Q)``: the one place it is made."""
        settled = ~self._blocks(probability).any(axis=-1)
        return (settled & (np.asarray(classifications) >= self.min_votes)) | (np.asarray(remaining) <= 0)

    def _blocks(self, probability: np.ndarray) -> np.ndarray:
        return ~(probability <= self.thresholds)

    # ----------------------------------------------------------------- one galaxy
    def decides(self, vote_counts: Mapping[str, int], classifications: int, max_votes: int | None = None) -> bool:
        """``is_decisive(...).decisive`` without the explanation, the platform's check on each
        counted vote: no arithmetic before ``min_votes`` (every galaxy passes through those
        votes), and none when a question that blocked another galaxy's check would block this
        one too — the same votes on it and above it, the same classifications and max_votes
        (:meth:`_memo_keys`). Most checks are of undecided galaxies held by a question
        seen before (the first one, mostly), so they cost a few dict lookups instead of the
        ~60 small numpy calls of the full pass (figures in docs/retirement.md)."""
        limit = self.max_votes if max_votes is None else max_votes
        if classifications >= limit:
            return True
        if classifications < self.min_votes:
            return False
        counts = self.tree.counts_list(vote_counts)
        first_votes = self._arrays.scopes[0][1](counts)
        if limit == self.max_votes and (classifications, first_votes) in self.first_question_blockers():
            return False
        keys = self._memo_keys(counts, classifications, limit)
        if any(key in self._blockers for key in keys):
            return False
        result = self.change_probabilities(np.array(counts, dtype=np.float64)[None, :], np.array([classifications]), limit)
        blocks = self._blocks(result["probability"][0])
        self._remember_blockers(key for key in keys if blocks[key[0]])
        return bool(self.decide(result["probability"], np.array([classifications]), result["remaining"])[0])

    def _memo_keys(self, counts: list[float], classifications: int, limit: int) -> list[tuple]:
        """Per question, in topological order: what its probability depends on (``_TreeArrays``)."""
        arrays = self._arrays
        if not self._narrow_keys:
            return [(qi, classifications, limit, votes(counts)) for qi, votes in arrays.scopes]
        totals = [sum(counts[start:stop]) for start, stop in self.schema.question_slices]
        return [(qi, classifications, limit, votes(counts), path_totals(totals) if path_totals else ())
                for qi, votes, path_totals in arrays.narrow_scopes]

    def first_question_blockers(self) -> frozenset[tuple]:
        """``(classifications, votes on the first question's answers)`` of every tally between
        ``min_votes`` and ``max_votes − 1`` votes whose first question blocks retirement, built once
        per rule. The first question's probability depends on nothing else (``_TreeArrays.scopes``),
        so one :meth:`change_probabilities` pass of this rule on a tree of the first question alone
        decides them all (11,445 tallies: ~27 ms, against ~0.3 s on the whole tree); empty when
        they are more than ``FIRST_QUESTION_TABLE_ROWS`` or the rule does not check that question."""
        if self._first_blockers is None:
            self._first_blockers = frozenset()
            first = self.tree.question(self.tree.first)
            tallies = [(n, votes) for n in range(self.min_votes, self.max_votes)
                       for votes in _compositions(n, len(first.answers))]
            if first.key in self.questions and 0 < len(tallies) <= FIRST_QUESTION_TABLE_ROWS:
                alone = self._first_question_alone()
                probability = alone.change_probabilities(np.array([votes for _n, votes in tallies], dtype=np.float64),
                                                         np.array([n for n, _votes in tallies], dtype=np.float64))
                blocking = alone._blocks(probability["probability"])[:, 0]
                self._first_blockers = frozenset(t for t, blocks in zip(tallies, blocking.tolist(), strict=True) if blocks)
        return self._first_blockers

    def _first_question_alone(self) -> RetirementRule:
        """This rule on a tree of the first question with every answer ending the tree."""
        first = self.tree.question(self.tree.first)
        document = self.tree.to_dict()
        question = next(q for q in document["questions"] if q["key"] == first.key)
        tree = DecisionTree.from_dict({**document, "questions": [
            {**question, "answers": [{**answer, "next": None} for answer in question["answers"]]}]})
        return RetirementRule(tree, max_votes=self.max_votes, min_votes=self.min_votes,
                              threshold={first.key: float(self.thresholds[self.schema.first_index])},
                              min_scored_votes=self.min_scored_votes,
                              base_concentration={a.column: float(self.answer_concentration[a.index]) for a in first.answers},
                              reach=self.reach, blocking=self.blocking)

    def _remember_blockers(self, keys) -> None:
        with _CACHE_LOCK:
            for key in keys:
                self._blockers[key] = True
            while len(self._blockers) > BLOCKER_MEMO_SIZE:
                self._blockers.popitem(last=False)

    def is_decisive(self, vote_counts: Mapping[str, int], prior: Mapping[str, float] | None = None,
                    prior_strength: float = DEFAULT_PRIOR_STRENGTH, classifications: int | None = None,
                    max_votes: int | None = None) -> Decision:
        """Decide for one galaxy. ``prior`` is the model's predicted answer fractions by
        column (e.g. ``{"smooth-or-featured_smooth": 0.8, ...}``); ``classifications``
        defaults to the votes on the first question."""
        counts = self.tree.counts_vector(vote_counts)[None, :]
        prior_array = None if prior is None else self.tree.counts_vector(prior)[None, :]
        first = self._arrays.first
        n = int(counts[0, first[0]:first[1]].sum()) if classifications is None else int(classifications)
        limit = self.max_votes if max_votes is None else max_votes
        result = self.change_probabilities(counts, np.array([n]), limit, prior_array, prior_strength)
        remaining = int(result["remaining"][0])
        decisive = bool(self.decide(result["probability"], np.array([n]), result["remaining"])[0])
        per_question = self._explain(counts[0], result)
        if remaining <= 0:
            return Decision(True, n, 0, "reached max_votes", per_question)
        if n < self.min_votes:
            return Decision(False, n, remaining, f"fewer than min_votes={self.min_votes} classifications",
                            per_question)
        if not decisive:
            blocking = [q.question for q in per_question.values() if not q.decisive]
            return Decision(False, n, remaining, "majority may still change: " + ", ".join(blocking), per_question)
        return Decision(True, n, remaining, "every question's majority is settled", per_question)

    def _explain(self, counts: np.ndarray, result: dict[str, np.ndarray]) -> dict[str, QuestionDecision]:
        votes_q = np.add.reduceat(counts, self._arrays.starts).astype(int).tolist()
        leader, probability, reach, expected, p_scored, p_change = (
            result[k][0].tolist() for k in ("leader", "probability", "reach", "expected_remaining", "p_scored", "p_change"))
        thresholds, checked = self.thresholds.tolist(), self._checked.tolist()
        return {question.key: QuestionDecision(
                    question=question.key, votes=votes_q[qi],
                    leader=question.answers[leader[qi]].key if leader[qi] >= 0 else None, reach=reach[qi],
                    expected_remaining=expected[qi], p_scored=p_scored[qi], p_change=p_change[qi],
                    probability=probability[qi], threshold=thresholds[qi], decisive=probability[qi] <= thresholds[qi])
                for qi, question in enumerate(self.tree.questions) if checked[qi]}
