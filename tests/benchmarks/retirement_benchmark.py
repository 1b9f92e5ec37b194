"""Early-retirement benchmark on real Galaxy Zoo vote counts (see docs/retirement.md).

Replays every galaxy's real votes in random order, one volunteer at a time, and stops when
:class:`classifier.retirement.RetirementRule` says the votes are decisive. Reports the votes
used against count-based retirement (40, or the galaxy's own total when it has fewer) and,
per question, agreement of the majority at the stop with the majority of all its votes.

Data (../shared/data, never copied into the repo):
* ``gz2_stripe82_votes/counts.csv.gz`` — GZ2 Stripe 82, 37 ``t..._count`` columns -> gz2 tree;
* ``gz_decals_votes/full_tree_counts.csv`` — GZ DECaLS, every answer -> decals_dr5 tree
  (old DR5 merging answers mapped onto the new ones, see ``DECALS_MERGING_MAP``);
* ``gz2_kaggle/catalog.csv`` + a trained checkpoint (``--kaggle-checkpoint``) — the real
  model's predictions on held-out galaxies as the prior.

The catalogs hold per-answer totals, not per-volunteer streams, so streams are rebuilt:
volunteers enter the first question's urn of votes; at each question (in tree order) the
volunteers who reach it draw answers from that question's urn without replacement. Counts
are reproduced exactly wherever they are consistent with the tree; when a question has
fewer votes than volunteers reaching it, the extra volunteers stop there (their remaining
answers are missing in the real data too); surplus votes are dropped. Both are counted.

Run (2 shared CPU cores; about a minute per dataset and setting)::

    /tmp/venvtest/bin/python tests/benchmarks/retirement_benchmark.py --json /tmp/retirement.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
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
    unknown = [c for c in frame.columns if c != "subject_id" and c not in schema.tree.answer_columns]
    if unknown:
        raise ValueError(f"{path}: columns not in the decals_dr5 tree: {unknown}")
    counts = frame.reindex(columns=list(schema.tree.answer_columns), fill_value=0).fillna(0).to_numpy(dtype=np.int64)
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


# ---------------------------------------------------------------- replay and scoring
def replay(rule: RetirementRule, cumulative: np.ndarray, volunteers: np.ndarray, prior: np.ndarray | None = None,
           prior_strength: float = 5.0) -> np.ndarray:
    """Votes used by each galaxy: the first n at which the rule is decisive, else its limit."""
    limit = np.minimum(volunteers, rule.max_votes)
    stop = limit.copy()
    active = np.ones(len(limit), dtype=bool)
    for n in range(max(rule.min_votes, 1), int(limit.max())):
        rows = np.nonzero(active & (limit > n))[0]
        if rows.size == 0:
            break
        decisive = rule.decisive_mask(cumulative[rows, n].astype(np.float64), np.full(rows.size, n), limit[rows],
                                      None if prior is None else prior[rows], prior_strength)
        stop[rows[decisive]] = n
        active[rows[decisive]] = False
    return stop


def clairvoyant_stop(schema: Schema, cumulative: np.ndarray, volunteers: np.ndarray,
                     min_scored_votes: int) -> np.ndarray:
    """The earliest stop after which every scored question's majority already equals (and
    stays equal to) its full-vote majority: what a rule that knew the future could save at
    100% agreement — an upper bound for any real rule at that agreement."""
    limit = np.minimum(volunteers, COUNT_LIMIT)
    g = np.arange(len(volunteers))
    full = cumulative[g, volunteers].astype(np.int64)
    right = np.ones(cumulative.shape[:2], dtype=bool)
    for start, stop in schema.question_slices:
        full_leader = _unique_leader(full[:, start:stop])
        scored = (full[:, start:stop].sum(axis=1) >= min_scored_votes) & (full_leader >= 0)
        for n in range(cumulative.shape[1]):
            right[:, n] &= ~scored | (_unique_leader(cumulative[:, n, start:stop].astype(np.int64)) == full_leader)
    stop = limit.copy()
    for n in range(int(limit.max()) - 1, 0, -1):
        still = (stop == n + 1) & right[:, n] & (n < limit)
        stop[still] = n
    return stop


def _unique_leader(counts: np.ndarray) -> np.ndarray:
    """Index of the unique top answer per row, −1 for ties or no votes."""
    order = np.argsort(-counts, axis=1, kind="stable")
    top = counts[np.arange(len(counts)), order[:, 0]]
    second = counts[np.arange(len(counts)), order[:, 1]] if counts.shape[1] > 1 else np.full(len(counts), -1)
    return np.where((top > 0) & (top > second), order[:, 0], -1)


def score(schema: Schema, cumulative: np.ndarray, volunteers: np.ndarray, stop: np.ndarray,
          min_scored_votes: int) -> dict[str, dict[str, float]]:
    """Per question: agreement of the stop-time majority with the full-vote majority over the
    galaxies where the full votes give that question ≥ ``min_scored_votes`` votes and a unique
    majority (a stop-time tie or no votes counts as disagreement)."""
    g = np.arange(len(stop))
    full = cumulative[g, volunteers].astype(np.int64)
    at_stop = cumulative[g, stop].astype(np.int64)
    out = {}
    for qi, key in enumerate(schema.question_keys):
        start, stop_ = schema.question_slices[qi]
        full_q, stop_q = full[:, start:stop_], at_stop[:, start:stop_]
        full_leader = _unique_leader(full_q)
        scored = (full_q.sum(axis=1) >= min_scored_votes) & (full_leader >= 0)
        agree = _unique_leader(stop_q) == full_leader
        out[key] = {"scored": int(scored.sum()),
                    "agreement": float(agree[scored].mean()) if scored.any() else float("nan")}
    return out


def summarise(name: str, schema: Schema, cumulative: np.ndarray, volunteers: np.ndarray, stop: np.ndarray,
              min_scored_votes: int, seconds: float) -> dict:
    baseline = np.minimum(volunteers, COUNT_LIMIT)
    per_question = score(schema, cumulative, volunteers, stop, min_scored_votes)
    agreements = [v["agreement"] for v in per_question.values() if v["scored"]]
    return {"setting": name, "galaxies": int(len(stop)), "mean_votes_used": float(stop.mean()),
            "mean_votes_baseline": float(baseline.mean()), "saved_vs_baseline": float(1 - stop.sum() / baseline.sum()),
            "saved_vs_40": float(1 - stop.sum() / (COUNT_LIMIT * len(stop))),
            "min_question_agreement": float(min(agreements)), "per_question": per_question,
            "seconds": round(seconds, 1)}


# ---------------------------------------------------------------- model priors
def simulated_prior(votes: VoteSet, full: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """A stand-in for a model's predicted fractions that does not peek at the vote sample:
    a draw of the true fractions from their posterior given all votes (Dirichlet(votes + 1),
    so the stand-in is as far from the observed fractions as an independent estimate would
    be), then logit-normal noise of scale ``noise`` (calibrated to a real model's error)."""
    schema = votes.schema
    out = np.empty(full.shape, dtype=np.float64)
    for start, stop in schema.question_slices:
        alpha = full[:, start:stop] + 1.0
        gamma = rng.standard_gamma(alpha)
        draw = gamma / gamma.sum(axis=1, keepdims=True)
        logits = np.log(np.clip(draw, 1e-6, 1)) + noise * rng.standard_normal(draw.shape)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        out[:, start:stop] = exp / exp.sum(axis=1, keepdims=True)
    return out


def fraction_rmse(schema: Schema, fractions: np.ndarray, counts: np.ndarray, min_votes: int = 5) -> float:
    """RMSE between fractions and observed vote fractions, over questions with ≥ min_votes votes."""
    errors = []
    for start, stop in schema.question_slices:
        total = counts[:, start:stop].sum(axis=1)
        rows = total >= min_votes
        observed = counts[rows, start:stop] / total[rows, None]
        errors.append((fractions[rows, start:stop] - observed).ravel())
    return float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))


def kaggle_votes_and_prior(checkpoint: Path, held_out: int, seed: int) -> tuple[VoteSet, np.ndarray]:
    """Kaggle GZ2 galaxies (counts = round(40 × share)) with a real model's MC-dropout
    fractions as the prior. The model is trained (once, when ``checkpoint`` does not exist
    yet) on the other Kaggle galaxies only, so its predictions are honest held-out estimates."""
    from classifier import kaggle
    from classifier.data import read_catalog
    from classifier.predict import load_model
    from classifier.training import TrainConfig, train

    schema = Schema.from_tree(DecisionTree.load("gz2"))
    frame = pd.read_csv(SHARED / "gz2_kaggle" / "catalog.csv")
    order = np.random.default_rng(seed).permutation(len(frame))
    if not checkpoint.is_file():
        started = time.monotonic()
        result = train(read_catalog(frame.iloc[order[held_out:]], schema, SHARED / "gz2_kaggle"),
                       images_dir=None, tree=schema.tree, out_dir=checkpoint.parent,
                       config=TrainConfig(image_size=48, epochs=12, patience=3, batch_size=64, device="cpu"))
        result.checkpoint_path.rename(checkpoint)
        print(f"trained the prior model on {len(frame) - held_out} galaxies in {time.monotonic() - started:.0f}s: "
              f"validation rmse {result.metrics['rmse']:.3f}, kaggle rmse {result.metrics.get('rmse_kaggle', 0):.4f}")
    predictor = load_model(checkpoint, device="cpu")
    frame = frame.iloc[order[:held_out]]
    catalog = kaggle.kaggle_to_counts(frame, schema)
    predictions = predictor.predict([str(SHARED / "gz2_kaggle" / f) for f in catalog["file_loc"]],
                                    n_samples=5, ids=catalog["id_str"].tolist())
    counts = catalog[list(schema.tree.answer_columns)].to_numpy(dtype=np.int64)
    # Kaggle counts every volunteer as reaching "odd"; the tree does not (star/artifact ends it).
    return VoteSet("gz2_kaggle", schema, catalog["id_str"].to_numpy(), counts), predictions.fractions


# ---------------------------------------------------------------- main
def run(votes: VoteSet, args: argparse.Namespace, rng: np.random.Generator, prior_sets: dict) -> list[dict]:
    started = time.monotonic()
    cumulative, volunteers, stats = rebuild_streams(votes, rng)
    print(f"\n== {votes.name}: {len(volunteers)} galaxies, median {int(np.median(volunteers))} volunteers; "
          f"rebuilt streams in {time.monotonic() - started:.0f}s (dropped {stats['dropped_votes']} of "
          f"{stats['votes']} votes, {stats['truncated_paths']} paths cut short)", flush=True)
    results = []
    settings = [("count only (baseline)", None, None), ("clairvoyant bound (knows the final majorities)", "oracle", None)]
    settings.append((f"first question only, t={args.threshold}",
                     RetirementRule(votes.schema, threshold=args.threshold, min_votes=args.min_votes,
                                    min_scored_votes=args.min_scored_votes,
                                    questions=[votes.schema.tree.first]), None))
    for threshold in args.thresholds:
        for base in args.base_concentrations:
            rule = RetirementRule(votes.schema, threshold=threshold, min_votes=args.min_votes,
                                  min_scored_votes=args.min_scored_votes, base_concentration=base)
            settings.append((f"whole tree, t={threshold}, a0={base}", rule, None))
            for label, prior in prior_sets.get(votes.name, {}).items():
                for strength in args.prior_strengths:
                    settings.append((f"whole tree, t={threshold}, a0={base}, {label}, strength {strength}", rule,
                                     (prior, strength)))
    for name, rule, prior in settings:
        started = time.monotonic()
        if rule is None:
            stop = np.minimum(volunteers, COUNT_LIMIT)
        elif rule == "oracle":
            stop = clairvoyant_stop(votes.schema, cumulative, volunteers, args.min_scored_votes)
        elif prior is None:
            stop = replay(rule, cumulative, volunteers)
        else:
            stop = replay(rule, cumulative, volunteers, *prior)
        summary = summarise(name, votes.schema, cumulative, volunteers, stop, args.min_scored_votes,
                            time.monotonic() - started)
        summary.update({"dataset": votes.name, "stream_stats": stats})
        results.append(summary)
        worst = min(summary["per_question"].items(), key=lambda kv: kv[1]["agreement"] if kv[1]["scored"] else 2)
        print(f"{name:60s} votes {summary['mean_votes_used']:5.1f}/{summary['mean_votes_baseline']:4.1f} "
              f"saved {100 * summary['saved_vs_baseline']:5.1f}% (vs 40: {100 * summary['saved_vs_40']:5.1f}%)  "
              f"min agreement {100 * summary['min_question_agreement']:6.2f}% ({worst[0]})  "
              f"[{summary['seconds']:.0f}s]", flush=True)
    for summary in results[2:]:
        print(f"  per question, {summary['setting']}: " + ", ".join(
            f"{k} {100 * v['agreement']:.1f}% (n={v['scored']})" for k, v in summary["per_question"].items()
            if v["scored"]))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["gz2_stripe82", "gz_decals"],
                        choices=["gz2_stripe82", "gz_decals", "gz2_kaggle"])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.005])
    parser.add_argument("--threshold", type=float, default=0.01, help="for the first-question-only rule")
    parser.add_argument("--min-votes", type=int, default=5)
    parser.add_argument("--min-scored-votes", type=int, default=5)
    parser.add_argument("--base-concentrations", type=float, nargs="+", default=[0.5])
    parser.add_argument("--prior-strengths", type=float, nargs="+", default=[15.0])
    parser.add_argument("--prior-noise", type=float, nargs="*", default=[0.5],
                        help="logit noise of the simulated model prior (none: no prior runs)")
    parser.add_argument("--kaggle-checkpoint", type=Path,
                        help="gz2 checkpoint for the real-model prior (trained on the other Kaggle galaxies if missing)")
    parser.add_argument("--kaggle-held-out", type=int, default=1500)
    parser.add_argument("--limit", type=int, help="use only the first N galaxies of each dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"real data not found at {SHARED}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    loaders = {"gz2_stripe82": load_stripe82, "gz_decals": load_decals}
    results = []
    for name in args.datasets:
        prior_sets: dict[str, dict[str, np.ndarray]] = {}
        if name == "gz2_kaggle":
            if args.kaggle_checkpoint is None:
                parser.error("gz2_kaggle needs --kaggle-checkpoint")
            votes, model_prior = kaggle_votes_and_prior(args.kaggle_checkpoint, args.kaggle_held_out, args.seed)
            rmse = fraction_rmse(votes.schema, model_prior, votes.counts)
            print(f"real model prior: fraction RMSE {rmse:.3f} against the held-out votes")
            prior_sets[name] = {f"real model prior (rmse {rmse:.3f})": model_prior}
        else:
            votes = loaders[name]()
        if args.limit and name != "gz2_kaggle":
            votes = VoteSet(votes.name, votes.schema, votes.ids[:args.limit], votes.counts[:args.limit])
        for noise in args.prior_noise:
            prior = simulated_prior(votes, votes.counts, noise, rng)
            rmse = fraction_rmse(votes.schema, prior, votes.counts)
            prior_sets.setdefault(votes.name, {})[f"simulated prior (noise {noise}, rmse {rmse:.3f})"] = prior
        results += run(votes, args, rng, prior_sets)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
