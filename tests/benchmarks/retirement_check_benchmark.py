"""Cost of the retirement check, as the platform makes it once per counted classification.

Two measurements, single thread, the implementation before the blocker memo
(``classifier/retirement.py`` at ``BASE_COMMIT``, loaded from git) and the current one
interleaved call by call in one run, so that load on the shared cores hits both alike:

* **per call**: ``decides(tally, n)`` on realistic tallies — prefixes of real vote streams
  rebuilt from the GZ2 Stripe 82 and GZ DECaLS counts (``retirement_benchmark.rebuild_streams``)
  at a random number of volunteers ≥ 5 — with the current rule's memo emptied before every
  call: its full pass, and with the first question's table (median µs).
* **replay**: every check real traffic makes, from a cold start (a new process): all galaxies'
  rebuilt streams interleaved in one random order, one check per counted vote up to 40 or the
  galaxy's real number of volunteers, a galaxy leaving the stream when it retires; the current
  rule is rebuilt every ``--recycle`` checks (a recycled worker: first-question table and memo
  start again, their cost included). Prints the mean µs per check (all checks, and those past
  ``min_votes``), the share of checks that still needed the full pass, by quarter of the traffic,
  and the memo's size at the end.

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

BASE_COMMIT = "a1639d7"


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


def timed(call, *args) -> tuple[int, object]:
    started = time.perf_counter_ns()
    result = call(*args)
    return time.perf_counter_ns() - started, result


def per_call(base, votes: bench.VoteSet, tallies: int, seed: int, repeats: int = 5) -> dict[str, float]:
    """Median µs per call on tallies past ``min_votes``: the memo emptied before every call, with
    the first question's table and without it (the full pass)."""
    tree = votes.schema.tree
    before = base.RetirementRule.cached(tree, max_votes=40)
    with_table, full_pass = RetirementRule(tree, max_votes=40), RetirementRule(tree, max_votes=40)
    with_table.first_question_blockers()
    full_pass._first_blockers = frozenset()
    calls = {"before the memo": before.decides, "now, full pass": full_pass.decides,
             "now, first-question table, no memo": with_table.decides}
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for tally, n in realistic_tallies(votes, tallies, seed):
        per_tally = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                with_table._blockers.clear()
                full_pass._blockers.clear()
                per_tally[name].append(timed(call, tally, n)[0])
        for name, values in per_tally.items():
            timings[name].append(float(np.median(values)))
    return {name: float(np.median(values)) / 1000 for name, values in timings.items()}


def replay(base, votes: bench.VoteSet, seed: int, recycle: int) -> None:
    """Every check of every galaxy's stream, both implementations on each, from cold; the current
    rule starts afresh (first-question table and memo) every ``recycle`` checks, as a recycled
    worker process would."""
    rng = np.random.default_rng(seed)
    cumulative, volunteers, _ = bench.rebuild_streams(votes, rng)
    tree, columns = votes.schema.tree, votes.schema.answer_columns
    before = base.RetirementRule(tree, max_votes=40)
    full_passes = []

    def fresh_rule() -> RetirementRule:
        rule = RetirementRule(tree, max_votes=40)
        change_probabilities = rule.change_probabilities
        rule.change_probabilities = lambda *a, **k: full_passes.append(1) or change_probabilities(*a, **k)
        return rule

    now = fresh_rule()
    order = rng.permutation(np.repeat(np.arange(len(volunteers)), np.minimum(volunteers, bench.COUNT_LIMIT)))
    seen = np.zeros(len(volunteers), dtype=int)
    retired = np.zeros(len(volunteers), dtype=bool)
    rows = []
    for g in order:
        if retired[g]:
            continue
        if rows and len(rows) % recycle == 0:
            now = fresh_rule()
        seen[g] += 1
        n = int(seen[g])
        tally = {c: int(v) for c, v in zip(columns, cumulative[g, n], strict=True) if v}
        passes = len(full_passes)
        if len(rows) % 2:
            (t_now, d_now), (t_before, d_before) = timed(now.decides, tally, n), timed(before.decides, tally, n)
        else:
            (t_before, d_before), (t_now, d_now) = timed(before.decides, tally, n), timed(now.decides, tally, n)
        if d_before != d_now:
            raise AssertionError(f"the implementations disagree on galaxy {votes.ids[g]} after {n} votes")
        retired[g] = d_now
        rows.append((n, t_before, t_now, len(full_passes) > passes))
    n, t_before, t_now, full = (np.array(column) for column in zip(*rows, strict=True))
    past = n >= now.min_votes
    print(f"  replay: {len(rows):,} checks ({past.sum():,} past min_votes) of {len(volunteers):,} galaxies, "
          f"{retired.sum():,} retired by consensus, a fresh rule every {recycle:,} checks; decisions identical")
    print(f"    mean µs per check, all checks:     before {t_before.mean() / 1000:7.1f}   now {t_now.mean() / 1000:7.1f}"
          f"   (ratio {t_before.mean() / t_now.mean():.1f}×)")
    print(f"    mean µs per check past min_votes:  before {t_before[past].mean() / 1000:7.1f}   "
          f"now {t_now[past].mean() / 1000:7.1f}")
    print(f"    checks past min_votes needing the full pass: {100 * full[past].mean():.1f}%; by quarter of the "
          "traffic: " + ", ".join(f"{100 * full[q][past[q]].mean():.0f}%" for q in np.array_split(np.arange(len(rows)), 4)))
    print(f"    memo at the end: {len(now._blockers):,} blocking questions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=bench.SHARED)
    parser.add_argument("--tallies", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument("--recycle", type=int, nargs="+", default=[5000, 1_000_000],
                        help="checks per process in the replay (gunicorn's max_requests is 5,000)")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"real data not found at {args.data}", file=sys.stderr)
        return 2
    base = load_base_module()
    sets = [bench.load_stripe82(args.data / "gz2_stripe82_votes" / "counts.csv.gz"),
            bench.load_decals(args.data / "gz_decals_votes" / "full_tree_counts.csv")]
    print(f"retirement check, single thread, before = {BASE_COMMIT}, load average {os.getloadavg()[0]:.1f}")
    for votes in sets:
        schema = votes.schema
        print(f"\n{schema.tree.name} ({schema.n_questions} questions, {schema.n_answers} answers)")
        medians = per_call(base, votes, args.tallies, args.seed)
        print(f"  per call, median µs on {args.tallies} real tallies: "
              + ", ".join(f"{name} {value:.1f}" for name, value in medians.items()))
        for recycle in [] if args.skip_replay else args.recycle:
            replay(base, votes, args.seed, recycle)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
