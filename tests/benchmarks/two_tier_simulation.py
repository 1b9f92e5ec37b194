"""Two-tier active-learning simulation on real GZ2 votes (see docs/active_learning.md).

The heavy tier (an encoder) is frozen; its embeddings of every galaxy are stored once
(``tests/benchmarks/two_tier_encoders.py embed``). The light tier, a Bayesian Dirichlet head
(:mod:`classifier.heads`), retrains in about a second per round on the labelled galaxies'
embeddings and vote counts, so the loop can run many small rounds.

Split (``classifier.splits.hash_split`` of ``GalaxyID``, the same for every run): evaluation
20%, encoder split E 40% (the "earlier project": only the supervised encoder saw its votes,
and head settings are tuned on it), pool P 40% (votes revealed only when acquired). The
pool's votes never train an encoder.

Strategies (each round acquires ``--batch`` galaxies):

* ``random``              — uniform;
* ``entropy``             — top-k predictive entropy;
* ``bald``                — top-k tree BALD (``classifier.acquisition.tree_bald``) on head samples;
* ``power-bald``          — stochastic power BALD, p ∝ BALD^β (diversity-aware batches);
* ``typiclust-power-bald``— TypiClust (``classifier.coverage``) picks the start set and every
                            batch until ``--coverage-labels``, then power BALD;
* ``typiclust-bald``      — the same start, then top-k BALD.

Every strategy but the TypiClust one starts from the same random set per seed. Loss = mean
Dirichlet–Multinomial −log p(all votes) on the evaluation split under the head's mixture;
also the Kaggle RMSE over the 37 shares.

    python tests/benchmarks/two_tier_simulation.py --embeddings /work/wt/artifacts/embeddings \\
        --encoders supervised ssl random --heads ensemble --seeds 0 1 2 3 4 --jobs 2 --json /tmp/tt.json

``--eval-catalog FILE --eval-images DIR`` evaluates on another catalogue instead (embedded
with ``--encoder-file NAME=PATH`` for each encoder, or the random-init control).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from classifier import acquisition, acquisition_batch  # noqa: E402
from classifier.coverage import typiclust  # noqa: E402
from classifier.data import read_catalog  # noqa: E402
from classifier.embeddings import encode_paths, load_embeddings, load_encoder, random_encoder  # noqa: E402
from classifier.heads import HeadConfig, mixture_nll, train_head  # noqa: E402
from classifier.kaggle import predicted_shares  # noqa: E402
from classifier.predict import mean_fractions  # noqa: E402
from classifier.schema import Schema  # noqa: E402
from classifier.splits import hash_split  # noqa: E402
from classifier.tree import DecisionTree  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
KAGGLE = SHARED / "gz2_kaggle"
# New strategies go at the end: a curve's random stream is seeded by its strategy's position.
STRATEGIES = ("random", "entropy", "bald", "power-bald", "typiclust-power-bald", "typiclust-bald")
# Scoring cost is linear in the candidates and the samples; a random candidate subset per
# round keeps tree BALD at ~1 s per round on two shared cores (Kirsch et al. 2023 use the same).
BALD_KWARGS = {"exact_limit": 300, "mc_samples": 64}

_DATA: dict = {}


def load_data(args: argparse.Namespace) -> dict:
    """Counts, shares and per-encoder embeddings for pool and evaluation galaxies."""
    schema = Schema.from_tree(DecisionTree.load("gz2"))
    frame = pd.read_csv(KAGGLE / "catalog.csv")
    data = read_catalog(frame, schema, KAGGLE, check_files=False)
    parts = hash_split(frame["GalaxyID"].tolist())
    ids = frame["GalaxyID"].astype(str).tolist()
    out = {"schema": schema, "pool_counts": data.counts[parts["pool"]], "encoder_counts": data.counts[parts["encoder"]],
           "embeddings": {}}
    if args.eval_catalog:
        evaluation = read_catalog(args.eval_catalog, schema, args.eval_images)
        out["eval_counts"], out["eval_shares"] = evaluation.counts, evaluation.reference_shares
        files = dict(spec.split("=", 1) for spec in args.encoder_file)
    else:
        out["eval_counts"], out["eval_shares"] = data.counts[parts["eval"]], data.reference_shares[parts["eval"]]
    for name in args.encoders:
        stored_ids, embeddings = load_embeddings(args.embeddings / name / "gz2")
        if stored_ids != ids:
            raise SystemExit(f"{args.embeddings / name / 'gz2'}: ids do not match {KAGGLE / 'catalog.csv'}")
        entry = {"pool": embeddings[parts["pool"]], "encoder": embeddings[parts["encoder"]],
                 "eval": embeddings[parts["eval"]]}
        if args.eval_catalog:
            frozen = random_encoder(seed=0) if name == "random" else load_encoder(files[name])
            entry["eval"] = encode_paths(frozen, evaluation.paths, views=args.views)
        out["embeddings"][name] = entry
    return out


def evaluate_head(head, embeddings: np.ndarray, counts: np.ndarray, shares: np.ndarray | None,
                  schema: Schema) -> tuple[float, float | None]:
    conc = head.sample_concentrations(embeddings)
    loss = float(mixture_nll(conc, counts, schema).mean())
    if shares is None:
        return loss, None
    return loss, float(np.sqrt(np.mean((predicted_shares(mean_fractions(conc, schema), schema) - shares) ** 2)))


def head_config(args: argparse.Namespace, kind: str, seed: int) -> HeadConfig:
    return HeadConfig(kind=kind, hidden=args.hidden, members=args.members, mc_passes=args.mc_passes,
                      steps=args.steps, lr=args.lr, weight_decay=args.weight_decay, seed=seed,
                      warm_steps=max(args.warm_steps, 1))


def choose(strategy: str, head, pool: np.ndarray, unlabelled: np.ndarray, labelled: list[int], k: int,
           args: argparse.Namespace, schema: Schema, rng: np.random.Generator) -> np.ndarray:
    """Pool positions of the next batch."""
    if strategy == "random":
        return rng.choice(unlabelled, size=k, replace=False)
    if strategy.startswith("typiclust-") and len(labelled) < args.coverage_labels:
        return typiclust(pool, k, labelled=labelled, seed=int(rng.integers(1 << 30)))
    candidates = (unlabelled if args.candidates <= 0 or args.candidates >= len(unlabelled)
                  else rng.choice(unlabelled, size=args.candidates, replace=False))
    conc = head.sample_concentrations(pool[candidates], n_samples=args.acquisition_passes, seed=int(rng.integers(1 << 30)))
    if strategy == "entropy":
        return candidates[acquisition_batch.top_k(acquisition.predictive_entropy(conc, schema), k)]
    scores = acquisition.tree_bald(conc, schema, 40, seed=int(rng.integers(1 << 30)), **BALD_KWARGS)
    if strategy in ("bald", "typiclust-bald"):
        return candidates[acquisition_batch.top_k(scores, k)]
    return candidates[acquisition_batch.power_sample(scores, k, args.beta, rng)]


def run_curve(task: tuple[str, str, str, int, argparse.Namespace]) -> dict:
    encoder, kind, strategy, seed, args = task
    data, schema = _DATA["data"], _DATA["data"]["schema"]
    emb = data["embeddings"][encoder]
    pool, pool_counts = emb["pool"], data["pool_counts"]
    rng = np.random.default_rng(10_000 * seed + STRATEGIES.index(strategy))
    if strategy.startswith("typiclust-"):
        labelled = list(typiclust(pool, args.start, seed=seed))
    else:
        labelled = list(np.random.default_rng(seed).permutation(len(pool))[:args.start])
    curve = {"encoder": encoder, "head": kind, "strategy": strategy, "seed": seed, "labelled": [], "loss": [],
             "rmse_kaggle": [], "train_seconds": [], "acquire_seconds": []}
    round_number = 0
    head = None
    while True:
        previous = head if args.warm_steps > 0 else None
        head = train_head(pool[labelled], pool_counts[labelled], schema, head_config(args, kind, seed * 1000 + round_number),
                          init=previous)
        loss, rmse = evaluate_head(head, emb["eval"], data["eval_counts"], data["eval_shares"], schema)
        curve["labelled"].append(len(labelled))
        curve["loss"].append(loss)
        curve["rmse_kaggle"].append(rmse)
        curve["train_seconds"].append(round(head.train_seconds, 3))
        if len(labelled) >= args.budget:
            curve["acquire_seconds"].append(0.0)
            break
        started = time.perf_counter()
        unlabelled = np.setdiff1d(np.arange(len(pool)), labelled)
        batch = args.batch if len(labelled) < args.large_batch_from else args.large_batch
        k = min(batch, args.budget - len(labelled))
        labelled += [int(i) for i in choose(strategy, head, pool, unlabelled, labelled, k, args, schema, rng)]
        curve["acquire_seconds"].append(round(time.perf_counter() - started, 3))
        round_number += 1
    print(f"{encoder:10s} {kind:10s} {strategy:21s} seed {seed}: loss {curve['loss'][0]:.2f} -> {curve['loss'][-1]:.2f}  "
          f"kaggle {curve['rmse_kaggle'][-1]:.4f}  train {sum(curve['train_seconds']):.0f}s "
          f"acquire {sum(curve['acquire_seconds']):.0f}s", flush=True)
    return curve


def _init_worker(data: dict) -> None:
    import torch

    torch.set_num_threads(1)
    _DATA["data"] = data


# ---------------------------------------------------------------- summary
def labels_to_reach(labelled: np.ndarray, values: np.ndarray, target: float) -> float | None:
    """First (interpolated) label count at which a lower-is-better curve reaches ``target``."""
    for i in range(len(values)):
        if values[i] <= target:
            if i == 0:
                return float(labelled[0])
            x0, x1, y0, y1 = labelled[i - 1], labelled[i], values[i - 1], values[i]
            return float(x0 + (x1 - x0) * (y0 - target) / (y0 - y1)) if y0 != y1 else float(x1)
    return None


def interval95(values: list[float]) -> list[float]:
    """Mean ± t(0.975, n−1)·s/√n over seeds."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return [float(values.mean())] * 2
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [float(values.mean() - half), float(values.mean() + half)]


def savings_at(x: np.ndarray, values: np.ndarray, target: float, budget: float) -> dict:
    """Labels each seed's curve needs to reach ``target`` and the saved fraction 1 − needed/budget
    with its interval over seeds; a seed that never reaches it counts as needing all the curve's
    labels (a lower bound, so unlike ``labels_saved_fraction`` no seed is left out)."""
    needed = [labels_to_reach(x, v, target) for v in values]
    saved = [1 - (n if n is not None else float(x[-1])) / budget for n in needed]
    return {"target": target, "budget": budget, "labels_needed": needed,
            "seeds_reaching": sum(n is not None for n in needed),
            "labels_saved_fraction": float(np.mean(saved)), "labels_saved_fraction_ci95": interval95(saved)}


def summarise(curves: list[dict], metric: str = "loss", reference_budgets: tuple[int, ...] = ()) -> dict:
    """Per (encoder, head, strategy): mean curve with 95% interval; labels needed to reach the
    same encoder+head's random final mean (per seed, so the interval is over seeds);
    ``labels_saved_fraction``; and the paired area between random's curve and the strategy's
    (mean over the label grid of random − strategy, per seed)."""
    out: dict = {}
    groups: dict = {}
    for c in curves:
        groups.setdefault((c["encoder"], c["head"], c["strategy"]), []).append(c)
    for (encoder, kind, strategy), runs in groups.items():
        reference = groups.get((encoder, kind, "random"))
        x = np.array(runs[0]["labelled"], dtype=float)
        values = np.array([r[metric] for r in runs], dtype=float)
        entry = {"encoder": encoder, "head": kind, "strategy": strategy, "seeds": [r["seed"] for r in runs],
                 "labelled": x.tolist(), "mean": values.mean(0).tolist(),
                 "ci95": [interval95(list(values[:, j])) for j in range(values.shape[1])],
                 "final_mean": float(values[:, -1].mean()), "final_ci95": interval95(list(values[:, -1]))}
        if reference is not None:
            ref_values = {r["seed"]: np.array(r[metric], dtype=float) for r in reference}
            final = float(np.mean([v[-1] for v in ref_values.values()]))
            budget = float(reference[0]["labelled"][-1])
            needed = [labels_to_reach(x, v, final) for v in values]
            reached = [n for n in needed if n is not None]
            saved = [1 - n / budget for n in reached]
            paired = [float(np.mean(ref_values[r["seed"]] - np.array(r[metric]))) for r in runs if r["seed"] in ref_values]
            entry.update({
                "random_final_mean": final, "random_budget": budget,
                "labels_needed": needed, "labels_needed_mean": float(np.mean(reached)) if reached else None,
                "seeds_reaching": len(reached),
                "labels_saved_fraction": float(np.mean(saved)) if saved else None,
                "labels_saved_fraction_ci95": interval95(saved) if saved else None,
                "area_between_curves": float(np.mean(paired)) if paired else None,
                "area_between_curves_ci95": interval95(paired) if paired else None,
                "saved_at_budget": {
                    str(b): savings_at(x, values, float(np.mean([v[list(x).index(b)] for v in ref_values.values()])), b)
                    for b in reference_budgets if b in list(x) and b <= budget}})
        out[f"{encoder}/{kind}/{strategy}"] = entry
    return out


# ---------------------------------------------------------------- plots
COLOURS = {"random": "tab:grey", "entropy": "tab:orange", "bald": "tab:blue", "power-bald": "tab:green",
           "typiclust-power-bald": "tab:purple", "typiclust-bald": "tab:brown"}


def plot_curves(summary: dict, path: Path, title: str, metric_label: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(e["encoder"], e["head"]) for e in summary.values()})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4), sharey=True, squeeze=False)
    for ax, (encoder, kind) in zip(axes[0], panels, strict=True):
        for entry in summary.values():
            if (entry["encoder"], entry["head"]) != (encoder, kind):
                continue
            x, mean, ci = np.array(entry["labelled"]), np.array(entry["mean"]), np.array(entry["ci95"])
            colour = COLOURS.get(entry["strategy"])
            ax.plot(x, mean, color=colour, lw=1.6, label=entry["strategy"])
            ax.fill_between(x, ci[:, 0], ci[:, 1], color=colour, alpha=0.18, lw=0)
        ax.set_title(f"encoder: {encoder}, head: {kind}", fontsize=10)
        ax.set_xlabel("labelled galaxies")
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)  # per panel: panels need not hold the same strategies
    axes[0][0].set_ylabel(metric_label)
    fig.suptitle(textwrap.fill(title, 60 * len(panels)), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_area(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries = [e for e in summary.values() if e["strategy"] != "random" and e.get("area_between_curves") is not None]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(entries) + 1.2))
    for i, e in enumerate(entries):
        lo, hi = e["area_between_curves_ci95"]
        ax.errorbar(e["area_between_curves"], i, xerr=[[e["area_between_curves"] - lo], [hi - e["area_between_curves"]]],
                    fmt="o", color=COLOURS.get(e["strategy"]), capsize=3)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(entries)), [f"{e['encoder']}/{e['head']}/{e['strategy']}" for e in entries], fontsize=8)
    ax.set_xlabel("area between curves: mean over labels of (random − strategy) loss\n> 0: better than random; bars: 95% interval over seeds (none with 1 seed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- tuning on E
def tune(args: argparse.Namespace, data: dict) -> list[dict]:
    """Head settings chosen on the encoder split E only (train on part of E, score on the rest),
    with random labels at a small and a large budget: never on the pool or the evaluation split."""
    import torch

    torch.set_num_threads(1)
    schema = data["schema"]
    rows = []
    for name in args.encoders:
        emb = data["embeddings"][name]["encoder"]
        counts = data["encoder_counts"]
        order = np.random.default_rng(99).permutation(len(emb))
        held_out, train_pool = order[:800], order[800:]
        for kind in args.heads:
            for hidden in (32, 64, 128):
                for steps in (100, 200, 400):
                    for n in (100, 2000):
                        cfg = HeadConfig(kind=kind, hidden=hidden, steps=steps, lr=args.lr, weight_decay=args.weight_decay,
                                         members=args.members, mc_passes=args.mc_passes, seed=99)
                        head = train_head(emb[train_pool[:n]], counts[train_pool[:n]], schema, cfg)
                        loss, _ = evaluate_head(head, emb[held_out], counts[held_out], None, schema)
                        rows.append({"encoder": name, "head": kind, "hidden": hidden, "steps": steps, "labels": n,
                                     "loss": round(loss, 3), "seconds": round(head.train_seconds, 2)})
                        print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--embeddings", type=Path, required=True, help="root with NAME/gz2/embeddings.npy per encoder")
    parser.add_argument("--encoders", nargs="+", default=["supervised", "ssl", "random"])
    parser.add_argument("--heads", nargs="+", default=["ensemble"], choices=["ensemble", "mc_dropout"])
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--large-batch-from", type=int, default=1000, help="from this many labels on, batches of --large-batch")
    parser.add_argument("--large-batch", type=int, default=100)
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--coverage-labels", type=int, default=200,
                        help="the typiclust-* strategies use TypiClust until this many labels")
    parser.add_argument("--candidates", type=int, default=1000,
                        help="random unlabelled candidates scored per round (0: the whole unlabelled pool)")
    parser.add_argument("--reference-budgets", type=int, nargs="*", default=[500, 1000],
                        help="also labels saved against random's mean loss at these budgets (where curves are steep)")
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--mc-passes", type=int, default=32)
    parser.add_argument("--acquisition-passes", type=int, default=8, help="MC-dropout passes for acquisition scores")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warm-steps", type=int, default=0,
                        help="later rounds continue from the previous round's head for this many steps (0: retrain)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    parser.add_argument("--eval-catalog", type=Path, help="evaluate on this catalogue instead of the fixed split")
    parser.add_argument("--eval-images", type=Path)
    parser.add_argument("--encoder-file", action="append", default=[], help="NAME=checkpoint, to embed --eval-catalog")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path("/tmp/two_tier.json"))
    parser.add_argument("--plots", type=Path, help="directory for PNGs (e.g. docs/img)")
    parser.add_argument("--plot-prefix", default="two_tier")
    parser.add_argument("--tune", action="store_true", help="only the head-settings grid on the encoder split E")
    parser.add_argument("--summarise-only", nargs="*", type=Path, metavar="JSON",
                        help="re-summarise and re-plot the curves of these result files (written by earlier runs) into --json")
    args = parser.parse_args()

    if args.summarise_only is not None:
        stored = [json.loads(path.read_text()) for path in args.summarise_only or [args.json]]
        # One curve per (encoder, head, strategy, seed): a later file's run replaces an earlier one.
        curves = list({(c["encoder"], c["head"], c["strategy"], c["seed"]): c for s in stored for c in s["curves"]}.values())
        config = {**stored[0]["config"], "sources": [str(p) for p in args.summarise_only]}
    else:
        data = load_data(args)
        if args.tune:
            args.json.write_text(json.dumps({"tuning": tune(args, data)}, indent=1))
            return 0
        tasks = [(e, h, s, seed, args) for seed in args.seeds for e in args.encoders for h in args.heads
                 for s in args.strategies]
        started = time.monotonic()
        config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "summarise_only"}
        curves = []
        with ProcessPoolExecutor(args.jobs, initializer=_init_worker, initargs=(data,)) as pool:
            for curve in pool.map(run_curve, tasks):
                curves.append(curve)  # partial results survive an interrupted run
                args.json.write_text(json.dumps({"config": config, "curves": curves}))
        config["wall_seconds"] = round(time.monotonic() - started)
    summary = {"loss": summarise(curves, "loss", tuple(args.reference_budgets))}
    if all(c["rmse_kaggle"][0] is not None for c in curves):
        summary["rmse_kaggle"] = summarise(curves, "rmse_kaggle")
    args.json.write_text(json.dumps({"config": config, "summary": summary, "curves": curves}, indent=1))
    compared = {key: e for key, e in summary["loss"].items() if "random_final_mean" in e}  # runs with random
    for key, e in compared.items():
        saved = e.get("labels_saved_fraction")
        ci = e.get("labels_saved_fraction_ci95")
        area, area_ci = e.get("area_between_curves"), e.get("area_between_curves_ci95")
        print(f"{key:45s} final loss {e['final_mean']:.3f} [{e['final_ci95'][0]:.3f}, {e['final_ci95'][1]:.3f}]  "
              f"reach random's final: {e['seeds_reaching']}/{len(e['seeds'])} seeds, "
              f"saved {'-' if saved is None else f'{saved:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]'}  "
              f"area {area:+.3f} [{area_ci[0]:+.3f}, {area_ci[1]:+.3f}]")
    print("\n| encoder | head | strategy | seeds | loss at 100 | loss at 500 | final loss (95% interval) | labels to reach random's final | labels saved (95% interval) | area between curves (95% interval) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for e in compared.values():
        x = e["labelled"]
        at = {n: e["mean"][x.index(n)] if n in x else float("nan") for n in (100, 500)}
        saved, ci = e.get("labels_saved_fraction"), e.get("labels_saved_fraction_ci95")
        needed = e.get("labels_needed_mean")
        area, area_ci = e.get("area_between_curves"), e.get("area_between_curves_ci95")
        print(f"| {e['encoder']} | {e['head']} | {e['strategy']} | {len(e['seeds'])} | {at[100]:.2f} | {at[500]:.2f} | "
              f"{e['final_mean']:.2f} ({e['final_ci95'][0]:.2f}–{e['final_ci95'][1]:.2f}) | "
              f"{'never' if needed is None else f'{needed:,.0f}'} ({e['seeds_reaching']}/{len(e['seeds'])} seeds) | "
              f"{'–' if saved is None else f'{100 * saved:+.0f}% ({100 * ci[0]:+.0f}% to {100 * ci[1]:+.0f}%)'} | "
              f"{area:+.2f} ({area_ci[0]:+.2f} to {area_ci[1]:+.2f}) |")
    print("\n| encoder | head | strategy | " + " | ".join(f"labels saved vs random's loss at {b:,}" for b in args.reference_budgets) + " |")
    print("|---|---|---|" + "---|" * len(args.reference_budgets))
    for e in compared.values():
        cells = []
        for b in args.reference_budgets:
            at = e.get("saved_at_budget", {}).get(str(b))
            cells.append("–" if at is None else f"{100 * at['labels_saved_fraction']:+.0f}% "
                         f"({100 * at['labels_saved_fraction_ci95'][0]:+.0f}% to {100 * at['labels_saved_fraction_ci95'][1]:+.0f}%), "
                         f"{at['seeds_reaching']}/{len(e['seeds'])} reach")
        print(f"| {e['encoder']} | {e['head']} | {e['strategy']} | " + " | ".join(cells) + " |")
    if args.plots:
        args.plots.mkdir(parents=True, exist_ok=True)
        title = (f"GZ2 two-tier simulation: start {config['start']}, batch {config['batch']} "
                 f"({config.get('large_batch', config['batch'])} from {config.get('large_batch_from', '-')}), "
                 f"seeds {sorted({c['seed'] for c in curves})} (count per curve in the table), mean and 95% interval")
        plot_curves(summary["loss"], args.plots / f"{args.plot_prefix}_loss.png", title, "evaluation loss (−log p of votes)")
        plot_area(summary["loss"], args.plots / f"{args.plot_prefix}_area.png")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
