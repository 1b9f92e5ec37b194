"""Early-retirement benchmark on real Galaxy Zoo vote counts, out of sample (docs/retirement.md).

Replays every galaxy's real votes in random order, one volunteer at a time, and stops when a
:class:`classifier.retirement.RetirementRule` says the votes are decisive. Every figure is
against count-only retirement on the same votes (at ``min(40, the galaxy's own total)``: a
replay cannot go past the real votes, and the rule is told that limit as ``max_votes``) and
against the clairvoyant bound; agreement is per question, the majority at the stop against
the majority of all the galaxy's votes.

Out of sample: galaxies are split in two fixed halves by a hash of their id. Settings
(thresholds: one, per depth or per question; the reach model) are chosen on one half, over
all stream seeds pooled, to save the most votes while every question keeps agreement ≥
``target + z·SE`` on that half; they are then reported on the other half, for each seed of
the stream rebuild, and again with the halves swapped. Intervals are min–max over the
(seed, split) pairs.

Data (../shared/data, never copied into the repo):
* ``gz2_stripe82_votes/counts.csv.gz`` — GZ2 Stripe 82, 37 ``t..._count`` columns -> gz2 tree;
* ``gz_decals_votes/full_tree_counts.csv`` — GZ DECaLS, every answer -> decals_dr5 tree
  (old DR5 merging answers mapped onto the new ones, see ``DECALS_MERGING_MAP``).

The catalogs hold per-answer totals, not per-volunteer streams, so streams are rebuilt:
volunteers enter the first question's urn of votes; at each question (in tree order) the
volunteers who reach it draw answers from that question's urn without replacement. Counts
are reproduced exactly wherever they are consistent with the tree; when a question has
fewer votes than volunteers reaching it, the extra volunteers stop there (their remaining
answers are missing in the real data too); surplus votes are dropped. Both are counted.

Run (2 shared CPU cores; ~6 min for both datasets and 5 seeds)::

    .venv/bin/python tests/benchmarks/retirement_benchmark.py --json /tmp/retirement.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from classifier.retirement import RetirementRule  # noqa: E402
from classifier.schema import Schema  # noqa: E402
from classifier.tree import DecisionTree  # noqa: E402

SHARED = (REPO / ".." / "shared" / "data").resolve()
COUNT_LIMIT = 40
MIN_SCORED_VOTES = 5
MIN_VOTES = 5
# Capped at 0.1 (--max-threshold): no question may accept a one-in-ten chance of a different
# majority, even where the tuning half never sees it decide (an even first-question split must
# never retire). The grid's step is ×1.21.
MAX_THRESHOLD = 0.1


def threshold_grid(maximum: float) -> tuple[float, ...]:
    return tuple(float(t) for t in np.geomspace(2e-4, maximum, 1 + round(np.log(maximum / 2e-4) / np.log(1.2142))))
# DR5 volunteers answered the older merging question (merger / tidal-debris / both / neither);
# the shipped tree has the newer answers. Map by meaning; "both" (a merger with tidal debris)
# counts as a merger. Newer answers present in the data keep their own column.
DECALS_MERGING_MAP = {
    "merging_neither-v1": "merging_none",
    "merging_tidal-debris-v1": "merging_minor-disturbance",
    "merging_both-v1": "merging_merger",
}


@dataclass
class VoteSet:
    name: str
    schema: Schema
    ids: np.ndarray
    counts: np.ndarray  # (G, A) real totals per answer, schema order


def load_stripe82(path: Path = SHARED / "gz2_stripe82_votes" / "counts.csv.gz") -> VoteSet:
    """Columns ``tNN_..._aMM_..._count`` are grouped by task number onto the gz2 questions
    (whose ``kaggle`` class ids are the same task numbers) and kept in file order, which is
    the tree's answer order."""
    schema = Schema.from_tree(DecisionTree.load("gz2"))
    frame = pd.read_csv(path)
    columns = []
    for question in schema.tree.questions:
        task = int(question.extra["kaggle"].removeprefix("Class"))
        cols = [c for c in frame.columns if c.startswith(f"t{task:02d}_") and c.endswith("_count")]
        if len(cols) != len(question.answers):
            raise ValueError(f"{path}: task t{task:02d} has {len(cols)} count columns, tree has {len(question.answers)}")
        columns += cols
    return VoteSet("gz2_stripe82", schema, frame["objid"].astype(str).to_numpy(),
                   frame[columns].fillna(0).to_numpy(dtype=np.int64))


def load_decals(path: Path = SHARED / "gz_decals_votes" / "full_tree_counts.csv") -> VoteSet:
    schema = Schema.from_tree(DecisionTree.load("decals_dr5"))
    frame = pd.read_csv(path)
    for old, new in DECALS_MERGING_MAP.items():
        if old in frame.columns:
            frame[new] = frame.get(new, 0) + frame.pop(old)
    unknown = [c for c in frame.columns if c != "subject_id" and c not in schema.answer_columns]
    if unknown:
        raise ValueError(f"{path}: columns not in the decals_dr5 tree: {unknown}")
    counts = frame.reindex(columns=list(schema.answer_columns), fill_value=0).fillna(0).to_numpy(dtype=np.int64)
    return VoteSet("gz_decals", schema, frame["subject_id"].astype(str).to_numpy(), counts)


# ---------------------------------------------------------------- streams
def _incoming(schema: Schema) -> dict[int, list[tuple[int, int]]]:
    """question index -> [(parent question index, answer position within the parent)]."""
    out: dict[int, list[tuple[int, int]]] = {}
    for dep in schema.dependencies:
        out.setdefault(dep.question, []).append((dep.parent, dep.answer_index - schema.question_slices[dep.parent][0]))
    return out


def rebuild_streams(votes: VoteSet, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Per-volunteer paths consistent with the totals, in random order.

    Returns the cumulative counts ``(G, N_max + 1, A)`` (row n = after n volunteers), the
    number of volunteers per galaxy and bookkeeping of votes that could not be placed.
    """
    schema = votes.schema
    incoming = _incoming(schema)
    first_start, first_stop = schema.question_slices[schema.first_index]
    volunteers = votes.counts[:, first_start:first_stop].sum(axis=1)
    n_max = int(volunteers.max())
    cumulative = np.zeros((len(volunteers), n_max + 1, schema.n_answers), dtype=np.int16)
    stats = {"volunteers": int(volunteers.sum()), "votes": int(votes.counts.sum()), "dropped_votes": 0,
             "truncated_paths": 0}
    for g, n in enumerate(volunteers):
        answer = np.full((n, schema.n_questions), -1, dtype=np.int64)
        for qi in schema.topological_indices:
            start, stop = schema.question_slices[qi]
            if qi == schema.first_index:
                arrivals = np.arange(n)
            else:
                reached = np.zeros(n, dtype=bool)
                for parent, position in incoming.get(qi, []):
                    reached |= answer[:, parent] == position
                arrivals = np.nonzero(reached)[0]
            urn = np.repeat(np.arange(stop - start), votes.counts[g, start:stop])
            rng.shuffle(urn)
            placed = min(len(urn), len(arrivals))
            chosen = rng.permutation(arrivals)[:placed]
            answer[chosen, qi] = urn[:placed]
            stats["dropped_votes"] += len(urn) - placed
            stats["truncated_paths"] += len(arrivals) - placed
        one_hot = np.zeros((n, schema.n_answers), dtype=np.int16)
        for qi, (start, _stop) in enumerate(schema.question_slices):
            rows = np.nonzero(answer[:, qi] >= 0)[0]
            one_hot[rows, start + answer[rows, qi]] = 1
        cumulative[g, 1:n + 1] = np.cumsum(one_hot[rng.permutation(n)], axis=0)
        cumulative[g, n + 1:] = cumulative[g, n]
    return cumulative, volunteers, stats


# ---------------------------------------------------------------- replays
def _unique_leader(counts: np.ndarray) -> np.ndarray:
    """Index of the unique top answer along the last axis, −1 for ties or no votes."""
    top = counts.max(axis=-1)
    leader = counts.argmax(axis=-1)
    unique = (counts == top[..., None]).sum(axis=-1) == 1
    return np.where((top > 0) & unique, leader, -1)


@dataclass
class Replay:
    """One stream rebuild of a vote set with what scoring and tuning need, precomputed:
    ``agrees[g, n, q]`` — the majority after n volunteers is the final one; ``scored[g, q]`` —
    the final votes give q ≥ ``MIN_SCORED_VOTES`` votes and a unique majority;
    ``probabilities[variant][g, n, q]`` — the rule's P_q after n volunteers (inf where it is
    not asked: n < MIN_VOTES or n ≥ the galaxy's limit)."""

    seed: int
    limit: np.ndarray
    agrees: np.ndarray
    scored: np.ndarray
    clairvoyant: np.ndarray
    stream_stats: dict[str, int]
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)


def build_replay(votes: VoteSet, seed: int) -> tuple[Replay, np.ndarray]:
    cumulative, volunteers, stats = rebuild_streams(votes, np.random.default_rng(seed))
    schema = votes.schema
    limit = np.minimum(volunteers, COUNT_LIMIT)
    g = np.arange(len(volunteers))
    full = cumulative[g, volunteers].astype(np.int64)
    window = cumulative[:, :COUNT_LIMIT + 1].astype(np.int64)
    agrees = np.zeros(window.shape[:2] + (schema.n_questions,), dtype=bool)
    scored = np.zeros((len(g), schema.n_questions), dtype=bool)
    for qi, (start, stop) in enumerate(schema.question_slices):
        full_leader = _unique_leader(full[:, start:stop])
        scored[:, qi] = (full[:, start:stop].sum(axis=1) >= MIN_SCORED_VOTES) & (full_leader >= 0)
        agrees[:, :, qi] = _unique_leader(window[:, :, start:stop]) == full_leader[:, None]
    return Replay(seed, limit, agrees, scored, clairvoyant_stop(agrees, scored, limit), stats), cumulative


def clairvoyant_stop(agrees: np.ndarray, scored: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """The earliest stop after which every scored question's majority already equals (and
    stays equal to) its full-vote majority: what a rule that knew the future could save at
    100% agreement — an upper bound for any real rule at that agreement."""
    right = (agrees | ~scored[:, None, :]).all(axis=2)
    stop = limit.copy()
    for n in range(int(limit.max()) - 1, 0, -1):
        still = (stop == n + 1) & right[:, n] & (n < limit)
        stop[still] = n
    return stop


def probability_tensor(rule: RetirementRule, cumulative: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """``P_q`` of ``rule`` after every number of volunteers ``n`` it would be asked at."""
    out = np.full((len(limit), COUNT_LIMIT + 1, rule.schema.n_questions), np.inf, dtype=np.float32)
    for n in range(MIN_VOTES, COUNT_LIMIT):
        rows = np.nonzero(limit > n)[0]
        if rows.size == 0:
            break
        result = rule.change_probabilities(cumulative[rows, n].astype(np.float64), np.full(rows.size, n), limit[rows])
        out[rows, n] = result["probability"]
    return out


def first_stop(ok: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """First n (≥ MIN_VOTES, below the limit) where ``ok[g, n]``, else the limit."""
    n = np.arange(ok.shape[1])
    ok = ok & (n >= MIN_VOTES) & (n < limit[:, None])
    return np.where(ok.any(axis=1), ok.argmax(axis=1), limit)


def outcome(replay: Replay, rows: np.ndarray, stop: np.ndarray) -> dict[str, np.ndarray | float]:
    """Votes and per-question errors of stopping ``rows`` at ``stop``."""
    scored = replay.scored[rows]
    wrong = scored & ~replay.agrees[rows, stop]
    return {"used": float(stop.sum()), "baseline": float(replay.limit[rows].sum()), "galaxies": len(rows),
            "errors": wrong.sum(axis=0), "scored": scored.sum(axis=0)}


def summary(outcomes: list[dict], schema: Schema) -> dict:
    """Per-(seed, split) figures and their mean / min–max."""
    runs = []
    for o in outcomes:
        with np.errstate(invalid="ignore", divide="ignore"):
            agreement = 1 - o["errors"] / o["scored"]
        worst = int(np.nanargmin(agreement))
        runs.append({"saved_vs_count_only": 1 - o["used"] / o["baseline"],
                     "saved_vs_40": 1 - o["used"] / (COUNT_LIMIT * o["galaxies"]),
                     "votes_used": o["used"] / o["galaxies"], "votes_count_only": o["baseline"] / o["galaxies"],
                     "worst_agreement": float(agreement[worst]), "worst_question": schema.question_keys[worst],
                     "agreement": {k: float(a) for k, a in zip(schema.question_keys, agreement, strict=True)},
                     "scored": {k: int(s) for k, s in zip(schema.question_keys, o["scored"], strict=True)}})
    out = {"runs": runs}
    for key in ("saved_vs_count_only", "saved_vs_40", "votes_used", "votes_count_only", "worst_agreement"):
        values = np.array([r[key] for r in runs])
        out[key] = {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}
    out["question_agreement"] = {k: {"mean": float(np.mean([r["agreement"][k] for r in runs])),
                                     "min": float(np.min([r["agreement"][k] for r in runs]))}
                                 for k in schema.question_keys}
    return out


# ---------------------------------------------------------------- tuning
def question_depths(schema: Schema) -> np.ndarray:
    """Fewest questions asked before each one (the first question is depth 0)."""
    depth = np.full(schema.n_questions, -1)
    depth[schema.first_index] = 0
    for qi in schema.topological_indices:
        for dep in schema.dependencies:
            if dep.parent == qi and (depth[dep.question] < 0 or depth[dep.question] > depth[qi] + 1):
                depth[dep.question] = depth[qi] + 1
    return depth


class Tuner:
    """Chooses thresholds on the tuning rows of every replay (seeds pooled): the most votes
    saved while every question keeps ``agreement ≥ min(1, target + z·SE)`` on those rows."""

    def __init__(self, replays: list[Replay], rows: np.ndarray, variant: str, target: float, z: float,
                 grid: tuple[float, ...]):
        self.variant = variant
        self.grid = grid
        self.parts = [(r.probabilities[variant][rows], r.limit[rows], r.agrees[rows], r.scored[rows]) for r in replays]
        scored = self.parts[0][3].sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.required = np.minimum(1.0, target + z * np.sqrt(target * (1 - target) / scored))
        self.required[scored == 0] = 0.0

    def _evaluate(self, oks: list[np.ndarray]) -> tuple[float, bool]:
        used = baseline = 0.0
        errors = scored = 0
        for ok, (_p, limit, agrees, scored_rows) in zip(oks, self.parts, strict=True):
            stop = first_stop(ok, limit)
            used += stop.sum()
            baseline += limit.sum()
            errors = errors + (scored_rows & ~agrees[np.arange(len(stop)), stop]).sum(axis=0)
            scored = scored + scored_rows.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            agreement = np.where(scored > 0, 1 - errors / np.maximum(scored, 1), 1.0)
        return 1 - used / baseline, bool((agreement >= self.required - 1e-12).all())

    def tune(self, groups: list[list[int]], start: np.ndarray, rounds: int = 3) -> tuple[np.ndarray, float]:
        """Coordinate ascent over groups of questions sharing one threshold."""
        thresholds = start.copy()
        best = self._evaluate([(p <= thresholds).all(axis=2) for p, *_ in self.parts])
        best_saving = best[0] if best[1] else -np.inf
        for _ in range(rounds):
            changed = False
            for group in groups:
                others = np.setdiff1d(np.arange(len(thresholds)), group)
                rest = [(p[:, :, others] <= thresholds[others]).all(axis=2) for p, *_ in self.parts]
                group_max = [p[:, :, group].max(axis=2) for p, *_ in self.parts]
                for t in self.grid:
                    saving, feasible = self._evaluate([r & (m <= t) for r, m in zip(rest, group_max, strict=True)])
                    if feasible and saving > best_saving + 1e-9:
                        best_saving, thresholds[group], changed = saving, t, True
            if not changed:
                break
        return thresholds, best_saving


def population_prior(schema: Schema, counts: np.ndarray, iterations: int = 300) -> dict[str, float]:
    """Dirichlet pseudo-votes per answer column fitted to the final tallies of ``counts``
    (the tuning half): the maximum-likelihood Dirichlet–Multinomial (Pólya) of each question
    over the galaxies that reached it, by Minka's fixed point."""
    from scipy.special import digamma

    out = {}
    for start, stop in schema.question_slices:
        votes = counts[:, start:stop].astype(np.float64)
        votes = votes[votes.sum(axis=1) > 0]
        totals = votes.sum(axis=1)
        alpha = np.full(stop - start, 0.5)
        for _ in range(iterations):
            numerator = (digamma(votes + alpha) - digamma(alpha)).sum(axis=0)
            denominator = (digamma(totals + alpha.sum()) - digamma(alpha.sum())).sum()
            alpha = np.clip(alpha * numerator / denominator, 1e-3, 1e3)
        out.update(zip(schema.answer_columns[start:stop], alpha.tolist(), strict=True))
    return out


# ---------------------------------------------------------------- main
VARIANTS = {"tree reach": {"reach": "tree"}, "observed reach": {"reach": "observed"},
            "observed reach, a0=1": {"reach": "observed", "base_concentration": 1.0},
            "observed reach, flat reach prior": {"reach": "observed-flat"}}


# What classifier.retirement ships as its defaults (TUNED_THRESHOLDS): within noise of the best
# tuned setting on both sets, and without a fitted prior to ship (see docs/retirement.md).
SHIPPED_SETTING = "observed reach, per-question thresholds"


def run_dataset(votes: VoteSet, args: argparse.Namespace) -> dict:
    schema = votes.schema
    halves = np.array([zlib.crc32(i.encode()) % 2 for i in votes.ids])
    splits = [(np.nonzero(halves == 0)[0], np.nonzero(halves == 1)[0]), (np.nonzero(halves == 1)[0], np.nonzero(halves == 0)[0])]
    # The population prior is fitted on each split's tuning half only: one variant per split.
    split_variants = [{f"observed reach, population prior (fitted on half {split})": {
        "reach": "observed", "base_concentration": population_prior(schema, votes.counts[tune_rows])}}
        for split, (tune_rows, _test) in enumerate(splits)] if args.population_prior else [{}, {}]
    replays = []
    for seed in args.seeds:
        started = time.monotonic()
        replay, cumulative = build_replay(votes, seed)
        every = ({name: VARIANTS[name] for name in {"tree reach", *args.variants}}  # the fixed rows need "tree reach"
                 | split_variants[0] | split_variants[1])
        for name, options in every.items():
            rule = RetirementRule(schema, max_votes=COUNT_LIMIT, min_votes=MIN_VOTES,
                                  min_scored_votes=MIN_SCORED_VOTES, **options)
            replay.probabilities[name] = probability_tensor(rule, cumulative, replay.limit)
        replays.append(replay)
        print(f"{votes.name} seed {seed}: streams and {len(every)} rule variants in "
              f"{time.monotonic() - started:.0f}s ({replay.stream_stats})", flush=True)
    depth = question_depths(schema)
    groupings = {"one threshold": [list(range(schema.n_questions))],
                 "per-depth thresholds": [list(np.nonzero(depth == d)[0]) for d in np.unique(depth)],
                 "per-question thresholds": [[q] for q in range(schema.n_questions)]}
    first_only = np.full(schema.n_questions, np.inf)
    first_only[schema.first_index] = 0.01
    fixed = {"count only (baseline)": None, "clairvoyant bound": "clairvoyant",
             "first question only, t=0.01 (tree reach)": ("tree reach", first_only),
             "shipped before (tree reach, t=0.005 everywhere)": ("tree reach", np.full(schema.n_questions, 0.005))}
    results: dict[str, list] = {name: [] for name in fixed}
    chosen_settings: list[dict] = []
    all_tuned: list[dict] = []
    for split, (tune_rows, test_rows) in enumerate(splits):
        for name, setting in fixed.items():
            for replay in replays:
                if setting is None:
                    stop = replay.limit[test_rows]
                elif setting == "clairvoyant":
                    stop = replay.clairvoyant[test_rows]
                else:
                    stop = first_stop((replay.probabilities[setting[0]][test_rows] <= setting[1]).all(axis=2),
                                      replay.limit[test_rows])
                results[name].append(outcome(replay, test_rows, stop))
        tuned = []
        for variant in list(args.variants) + list(split_variants[split]):
            tuner = Tuner(replays, tune_rows, variant, args.target, args.z, threshold_grid(args.max_threshold))
            one, one_saving = tuner.tune(groupings["one threshold"], np.full(schema.n_questions, tuner.grid[0]))
            for grouping, groups in groupings.items():
                thresholds, saving = (one, one_saving) if grouping == "one threshold" else tuner.tune(groups, one)
                name = f"{variant}, {grouping}"
                tuned.append((saving, name, variant, thresholds))
                all_tuned.append({"split": split, "setting": name, "tuning_saving": saving,
                                  "thresholds": {k: float(t) for k, t in zip(schema.question_keys, thresholds, strict=True)}})
                name = name.replace(f" (fitted on half {split})", "")
                results.setdefault(name, [])
                for replay in replays:
                    stop = first_stop((replay.probabilities[variant][test_rows] <= thresholds).all(axis=2),
                                      replay.limit[test_rows])
                    results[name].append(outcome(replay, test_rows, stop))
                print(f"  split {split} {name:50s} tuning-half saving {100 * saving:5.1f}%", flush=True)
        saving, name, variant, thresholds = max(tuned, key=lambda t: t[0])
        options = VARIANTS.get(variant) or split_variants[split][variant]
        chosen_settings.append({"split": split, "setting": name, "variant": options, "tuning_saving": saving,
                                "thresholds": {k: float(t) for k, t in zip(schema.question_keys, thresholds, strict=True)}})
        results.setdefault("chosen on the tuning half", [])
        for replay in replays:
            stop = first_stop((replay.probabilities[variant][test_rows] <= thresholds).all(axis=2),
                              replay.limit[test_rows])
            results["chosen on the tuning half"].append(outcome(replay, test_rows, stop))
    summaries = {name: summary(outcomes, schema) for name, outcomes in results.items()}
    print(f"\n== {votes.name}: {len(votes.ids)} galaxies; out of sample: {len(args.seeds)} seeds × 2 splits, "
          f"mean [min–max]; target {args.target:.2%} + {args.z}·SE on the tuning half")
    for name, s in summaries.items():
        print(f"{name:58s} votes {s['votes_used']['mean']:5.2f}/{s['votes_count_only']['mean']:5.2f}  saved vs count-only "
              f"{_interval(s['saved_vs_count_only'])}  vs 40 {_interval(s['saved_vs_40'])}  worst question "
              f"{_interval(s['worst_agreement'], 2)} ({', '.join(sorted({r['worst_question'] for r in s['runs']}))})")
    chosen = summaries["chosen on the tuning half"]["question_agreement"]
    print("  chosen, per question (mean / min): " + ", ".join(
        f"{k} {100 * v['mean']:.2f}/{100 * v['min']:.2f}" for k, v in chosen.items()))
    for c in chosen_settings:
        print(f"  split {c['split']} chose {c['setting']}: " + json.dumps({k: round(v, 5) for k, v in c["thresholds"].items()}))
    for c in all_tuned:
        if c["split"] == 0 and c["setting"] == SHIPPED_SETTING:
            print(f"  shipped defaults ({SHIPPED_SETTING}, tuned on half 0): "
                  + json.dumps({k: round(v, 5) for k, v in c["thresholds"].items()}))
    return {"dataset": votes.name, "galaxies": len(votes.ids), "seeds": list(args.seeds), "target": args.target, "z": args.z,
            "chosen": chosen_settings, "tuned": all_tuned, "settings": summaries,
            "stream_stats": [r.stream_stats for r in replays]}


def _interval(values: dict[str, float], digits: int = 1) -> str:
    return f"{100 * values['mean']:.{digits}f}% [{100 * values['min']:.{digits}f}–{100 * values['max']:.{digits}f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["gz2_stripe82", "gz_decals"], choices=["gz2_stripe82", "gz_decals"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--no-population-prior", dest="population_prior", action="store_false",
                        help="skip the variant with a Dirichlet prior fitted on the tuning half")
    parser.add_argument("--max-threshold", type=float, default=MAX_THRESHOLD, help="largest threshold tried")
    parser.add_argument("--target", type=float, default=0.99, help="per-question agreement to keep")
    parser.add_argument("--z", type=float, default=1.0, help="safety margin on the tuning half, in standard errors")
    parser.add_argument("--limit", type=int, help="use only the first N galaxies of each dataset")
    parser.add_argument("--data", type=Path, default=SHARED, help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"real data not found at {args.data}", file=sys.stderr)
        return 2
    loaders = {"gz2_stripe82": lambda: load_stripe82(args.data / "gz2_stripe82_votes" / "counts.csv.gz"),
               "gz_decals": lambda: load_decals(args.data / "gz_decals_votes" / "full_tree_counts.csv")}
    results = []
    for name in args.datasets:
        votes = loaders[name]()
        if args.limit:
            votes = VoteSet(votes.name, votes.schema, votes.ids[:args.limit], votes.counts[:args.limit])
        results.append(run_dataset(votes, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
