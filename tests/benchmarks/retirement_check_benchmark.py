"""Cost of one retirement check, as the platform makes it once per counted classification.

Times ``RetirementRule(tree, max_votes=40).is_decisive(vote_counts, classifications=n)`` on
realistic tallies — prefixes of real vote streams rebuilt from the GZ2 Stripe 82 and GZ
DECaLS counts (``retirement_benchmark.rebuild_streams``) at a random number of volunteers —
for the implementation before this change (``classifier/retirement.py`` at ``BASE_COMMIT``,
loaded from git) and the current one, interleaved in one run, single thread. Prints the
median µs per call: constructing the rule on every call (what the platform did) and reusing
one rule (``RetirementRule.cached``, what it should do).

Run::

    .venv/bin/python tests/benchmarks/retirement_check_benchmark.py --data /work/shared/data
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import retirement_benchmark as bench  # noqa: E402

from classifier.retirement import RetirementRule  # noqa: E402

BASE_COMMIT = "9dd4228"


def load_base_module():
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{BASE_COMMIT}:classifier/retirement.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"retirement_{BASE_COMMIT}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(f"retirement_{BASE_COMMIT}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def realistic_tallies(votes: bench.VoteSet, count: int, seed: int) -> list[tuple[dict[str, int], int]]:
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(votes.ids), size=count, replace=len(votes.ids) < count)
    subset = bench.VoteSet(votes.name, votes.schema, votes.ids[rows], votes.counts[rows])
    cumulative, volunteers, _ = bench.rebuild_streams(subset, rng)
    out = []
    for g, total in enumerate(np.minimum(volunteers, bench.COUNT_LIMIT)):
        n = int(rng.integers(min(5, total), total + 1))
        tally = {c: int(v) for c, v in zip(votes.schema.answer_columns, cumulative[g, n], strict=True) if v}
        out.append((tally, n))
    return out


def median_us(calls, repeats: int) -> dict[str, float]:
    """Interleaves the implementations call by call so that load on the shared cores hits all alike."""
    timings = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter_ns()
            call()
            timings[name].append(time.perf_counter_ns() - started)
    return {name: float(np.median(t)) / 1000 for name, t in timings.items()}


def implementations(base, tree, base_rule, rule, tally: dict[str, int], n: int) -> dict:
    """The calls timed, each deciding ``tally`` after ``n`` classifications."""
    return {
        "base, rule built per call": lambda: base.RetirementRule(tree, max_votes=40).is_decisive(
            tally, classifications=n).decisive,
        "base, rule reused": lambda: base_rule.is_decisive(tally, classifications=n).decisive,
        "now, rule built per call": lambda: RetirementRule(tree, max_votes=40).is_decisive(
            tally, classifications=n).decisive,
        "now, RetirementRule.cached": lambda: RetirementRule.cached(tree, max_votes=40).is_decisive(
            tally, classifications=n).decisive,
        "now, rule reused": lambda: rule.is_decisive(tally, classifications=n).decisive,
        "now, cached + decides (platform)": lambda: RetirementRule.cached(tree, max_votes=40).decides(tally, n)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=bench.SHARED)
    parser.add_argument("--tallies", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"real data not found at {args.data}", file=sys.stderr)
        return 2
    base = load_base_module()
    sets = [bench.load_stripe82(args.data / "gz2_stripe82_votes" / "counts.csv.gz"),
            bench.load_decals(args.data / "gz_decals_votes" / "full_tree_counts.csv")]
    print(f"median µs per is_decisive call, single thread, {args.tallies} real tallies per tree, "
          f"base = {BASE_COMMIT}")
    for votes in sets:
        tree = votes.schema.tree
        tallies = realistic_tallies(votes, args.tallies, args.seed)
        base_rule, rule = base.RetirementRule(tree, max_votes=bench.COUNT_LIMIT), RetirementRule.cached(tree, max_votes=40)
        per_tally = [median_us(implementations(base, tree, base_rule, rule, tally, n), repeats=5) for tally, n in tallies]
        old_tree_rule = RetirementRule(tree, max_votes=40, threshold=0.005, reach="tree")
        same = np.mean([base_rule.is_decisive(t, classifications=n).decisive
                        == old_tree_rule.is_decisive(t, classifications=n).decisive for t, n in tallies])
        print(f"\n{tree.name} ({votes.schema.n_questions} questions, {votes.schema.n_answers} answers); "
              f"the base rule's settings (reach='tree', t=0.005) decide identically on {100 * same:.0f}% of tallies")
        for name in per_tally[0]:
            print(f"  {name:32s} {np.median([p[name] for p in per_tally]):8.1f} µs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
