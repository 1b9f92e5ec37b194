"""Active-learning simulation on real GZ2 images and votes (see docs/active_learning.md).

Simulated volunteers reveal each acquired galaxy's real vote counts (Kaggle Galaxy Challenge
shares × 40, via ``classifier.kaggle``). Every strategy starts from the same random labelled
set per seed, acquires a batch from a fixed unlabelled pool each round, retrains with
``classifier.training.train`` (warm-started from the previous round's model) and is scored
on a fixed validation set that no strategy ever acquires from. Strategies:

* ``random``        — uniform (the 'spice' baseline);
* ``entropy``       — top-k predictive entropy (``classifier.acquisition.predictive_entropy``);
* ``bald``          — top-k tree BALD (``classifier.acquisition.tree_bald``, 40 expected votes);
* ``bald-power``    — tree BALD with stochastic power sampling, ``p ∝ BALD^β``
                      (``classifier.acquisition_batch.power_sample``), the diversity-aware rule.

Writes a JSON of curves (validation loss, RMSE and Kaggle RMSE against labelled galaxies,
per strategy and seed) and a PNG plot. Sized for two shared CPU cores (~1 hour)::

    OMP_NUM_THREADS=1 nohup /tmp/venvtest/bin/python tests/benchmarks/active_learning_simulation.py \\
        --out /tmp/al > /tmp/al.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from classifier import acquisition, acquisition_batch  # noqa: E402
from classifier.checkpoint import load_checkpoint  # noqa: E402
from classifier.data import load_images, read_catalog  # noqa: E402
from classifier.kaggle import predicted_shares  # noqa: E402
from classifier.losses import dirichlet_multinomial_log_prob  # noqa: E402
from classifier.predict import mc_concentrations, mean_fractions, question_totals  # noqa: E402
from classifier.schema import Schema  # noqa: E402
from classifier.training import TrainConfig, train  # noqa: E402
from classifier.tree import DecisionTree  # noqa: E402

SHARED = (REPO / ".." / "shared" / "data").resolve()
KAGGLE = SHARED / "gz2_kaggle"
STRATEGIES = ("random", "entropy", "bald", "bald-power")
SPLIT_SEED = 12345  # the validation set and pool are the same for every seed and strategy


def validation_loss(concentrations: np.ndarray, counts: np.ndarray, schema: Schema) -> float:
    """Mean over galaxies of −log p(votes | posterior predictive): the Dirichlet–Multinomial
    likelihood of the whole tree's votes, averaged over the MC-dropout passes."""
    conc = torch.as_tensor(concentrations, dtype=torch.float64)  # (G, T, A)
    votes = torch.as_tensor(counts, dtype=torch.float64)[:, None, :].expand_as(conc)
    log_p = dirichlet_multinomial_log_prob(votes.reshape(-1, conc.shape[-1]), conc.reshape(-1, conc.shape[-1]),
                                           schema).sum(-1).reshape(conc.shape[:2])
    mixture = torch.logsumexp(log_p, dim=1) - np.log(conc.shape[1])
    return float(-mixture.mean())


def fraction_errors(concentrations: np.ndarray, counts: np.ndarray, shares: np.ndarray, schema: Schema) -> tuple[float, float]:
    """RMSE of the predicted vote fractions (answered questions) and the Kaggle RMSE over the
    37 shares — the same definitions as ``classifier.metrics.evaluate``, without its interval
    calibration, which would cost more than the training on two cores."""
    fractions = mean_fractions(concentrations, schema)
    votes = question_totals(counts, schema)
    answered = votes > 0
    observed = counts / np.maximum(votes, 1)
    rmse = float(np.sqrt(np.mean((fractions - observed)[answered] ** 2)))
    rmse_kaggle = float(np.sqrt(np.mean((predicted_shares(fractions, schema) - shares) ** 2)))
    return rmse, rmse_kaggle


def choose(strategy: str, concentrations: np.ndarray, schema: Schema, k: int, beta: float,
           rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Positions (into ``concentrations``) of the next batch, and seconds spent scoring."""
    started = time.monotonic()
    if strategy == "random":
        picked = rng.permutation(len(concentrations))[:k]
    elif strategy == "entropy":
        picked = acquisition_batch.top_k(acquisition.predictive_entropy(concentrations, schema), k)
    else:
        scores = acquisition.tree_bald(concentrations, schema, 40, seed=int(rng.integers(1 << 30)))
        picked = (acquisition_batch.top_k(scores, k) if strategy == "bald"
                  else acquisition_batch.power_sample(scores, k, beta, rng))
    return picked, time.monotonic() - started


def run(args: argparse.Namespace) -> dict:
    schema = Schema.from_tree(DecisionTree.load("gz2"))
    frame = pd.read_csv(KAGGLE / "catalog.csv")
    data = read_catalog(frame, schema, KAGGLE)
    order = np.random.default_rng(SPLIT_SEED).permutation(len(data.paths))
    val_idx, pool_idx = order[:args.val], order[args.val:args.val + args.pool]
    config = TrainConfig(image_size=args.image_size, crop_fraction=args.crop_fraction, epochs=args.epochs,
                         patience=args.patience,
                         batch_size=args.train_batch, lr=args.lr, widths=tuple(args.widths), val_fraction=0.15,
                         eval_mc_samples=args.mc, device="cpu")
    preprocessing = config.preprocessing()
    started = time.monotonic()
    val_images = load_images([data.paths[i] for i in val_idx], preprocessing)
    pool_images = load_images([data.paths[i] for i in pool_idx], preprocessing)
    print(f"decoded {len(val_idx)} validation + {len(pool_idx)} pool images in {time.monotonic() - started:.0f}s",
          flush=True)
    val_counts = data.counts[val_idx]
    val_shares = None if data.reference_shares is None else data.reference_shares[val_idx]

    curves: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="al_sim_"))
    for seed in args.seeds:
        start_positions = np.random.default_rng(seed).permutation(len(pool_idx))[:args.start]
        for strategy in args.strategies:
            rng = np.random.default_rng(1000 * seed + STRATEGIES.index(strategy))
            labelled = list(start_positions)
            previous = None
            curve = {"strategy": strategy, "seed": seed, "labelled": [], "val_loss": [], "rmse": [],
                     "rmse_kaggle": [], "train_seconds": [], "acquire_seconds": []}
            for round_number in range(args.rounds + 1):
                t0 = time.monotonic()
                warm = args.warm_epochs > 0 and round_number > 0
                round_config = {**config.to_dict(), "seed": seed * 100 + round_number,
                                **({"epochs": args.warm_epochs} if warm else {})}
                result = train(data.subset(pool_idx[labelled]), images_dir=None, tree=schema.tree,
                               out_dir=work / f"{strategy}_{seed}_{round_number}",
                               config=TrainConfig.from_dict(round_config),
                               init_checkpoint=previous if warm else None)
                previous = result.checkpoint_path
                model = load_checkpoint(result.checkpoint_path).build_model()
                train_seconds = time.monotonic() - t0
                val_conc = mc_concentrations(model, val_images, preprocessing, args.mc, torch.device("cpu"))
                rmse, rmse_kaggle = fraction_errors(val_conc, val_counts, val_shares, schema)
                curve["labelled"].append(len(labelled))
                curve["val_loss"].append(validation_loss(val_conc, val_counts, schema))
                curve["rmse"].append(rmse)
                curve["rmse_kaggle"].append(rmse_kaggle)
                curve["train_seconds"].append(round(train_seconds, 1))
                acquire_seconds = 0.0
                if round_number < args.rounds:
                    unlabelled = np.setdiff1d(np.arange(len(pool_idx)), labelled)
                    pool_conc = mc_concentrations(model, pool_images[unlabelled], preprocessing, args.mc,
                                                  torch.device("cpu"))
                    picked, acquire_seconds = choose(strategy, pool_conc, schema, args.batch, args.beta, rng)
                    labelled += list(unlabelled[picked])
                curve["acquire_seconds"].append(round(acquire_seconds, 1))
                print(f"seed {seed} {strategy:10s} labelled {curve['labelled'][-1]:5d}  "
                      f"val loss {curve['val_loss'][-1]:7.3f}  rmse {curve['rmse'][-1]:.4f}  "
                      f"kaggle rmse {curve['rmse_kaggle'][-1]:.4f}  epochs {result.metrics['epochs_trained']}  "
                      f"train {train_seconds:.0f}s  acquire {acquire_seconds:.0f}s", flush=True)
            curves.append(curve)
            Path(args.out, "curves.json").write_text(json.dumps({"config": vars_json(args), "curves": curves}, indent=1))
    return {"config": vars_json(args), "curves": curves, "summary": summarise(curves)}


def vars_json(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def labels_to_reach(labelled: np.ndarray, values: np.ndarray, target: float) -> float | None:
    """Smallest (linearly interpolated) number of labels at which a decreasing-is-better
    curve first reaches ``target``; None if it never does."""
    for i in range(len(values)):
        if values[i] <= target:
            if i == 0:
                return float(labelled[0])
            x0, x1, y0, y1 = labelled[i - 1], labelled[i], values[i - 1], values[i]
            return float(x0 + (x1 - x0) * (y0 - target) / (y0 - y1)) if y0 != y1 else float(x1)
    return None


def summarise(curves: list[dict]) -> dict:
    """Mean curve per strategy (over seeds) and labels needed to match random's final value."""
    out: dict = {}
    for metric in ("val_loss", "rmse_kaggle"):
        means = {}
        for strategy in dict.fromkeys(c["strategy"] for c in curves):
            runs = [c for c in curves if c["strategy"] == strategy]
            means[strategy] = (np.array(runs[0]["labelled"]), np.mean([r[metric] for r in runs], axis=0),
                               np.std([r[metric] for r in runs], axis=0))
        if "random" not in means:
            continue
        labelled, random_mean, _ = means["random"]
        target = float(random_mean[-1])
        entry = {"target": target, "random_labels": float(labelled[-1]), "strategies": {}}
        for strategy, (x, mean, std) in means.items():
            # Noisy curves can dip below their own end point early; random is the reference.
            needed = float(labelled[-1]) if strategy == "random" else labels_to_reach(x, mean, target)
            entry["strategies"][strategy] = {
                "mean": mean.tolist(), "std": std.tolist(), "labels_to_match_random": needed,
                "labels_saved": None if needed is None else 1 - needed / float(labelled[-1])}
        out[metric] = entry
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = result["curves"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"random": "tab:grey", "entropy": "tab:orange", "bald": "tab:blue", "bald-power": "tab:green"}
    for ax, metric, label in ((axes[0], "val_loss", "validation loss (−log p of votes)"),
                              (axes[1], "rmse_kaggle", "Kaggle RMSE (37 shares)")):
        for strategy in dict.fromkeys(c["strategy"] for c in curves):
            runs = [c for c in curves if c["strategy"] == strategy]
            x = np.array(runs[0]["labelled"])
            values = np.array([r[metric] for r in runs])
            for run_values in values:
                ax.plot(x, run_values, color=colours.get(strategy), alpha=0.25, lw=0.8)
            ax.plot(x, values.mean(0), color=colours.get(strategy), lw=2, marker="o", ms=3,
                    label=f"{strategy} (mean of {len(runs)})")
        ax.set_xlabel("labelled galaxies")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    config = result["config"]
    crop = f", crop {config['crop_fraction']}" if "crop_fraction" in config else ""
    fig.suptitle(f"GZ2 Kaggle, {config['image_size']} px{crop}, pool {config['pool']}, validation {config['val']}, "
                 f"start {config['start']}, batch {config['batch']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/al"))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--pool", type=int, default=4000)
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--crop-fraction", type=float, default=0.8,
                        help="central fraction of each image the network sees (0.5 fills it with the galaxy)")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the first round (from scratch)")
    parser.add_argument("--warm-epochs", type=int, default=5,
                        help="later rounds fine-tune the previous round's model for this many epochs (0: retrain from scratch)")
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--train-batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--mc", type=int, default=5, help="MC-dropout passes")
    parser.add_argument("--beta", type=float, default=1.0, help="power of BALD for bald-power sampling")
    parser.add_argument("--plot-only", action="store_true", help="re-plot OUT/curves.json")
    args = parser.parse_args(argv)
    if not KAGGLE.is_dir():
        print(f"real data not found at {KAGGLE}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "1")))
    if args.plot_only:
        stored = json.loads((args.out / "curves.json").read_text())
        result = {**stored, "summary": summarise(stored["curves"])}
    else:
        result = run(args)
    (args.out / "curves.json").write_text(json.dumps(result, indent=1))
    plot(result, args.out / "learning_curves.png")
    for metric, entry in result["summary"].items():
        print(f"\n{metric}: random reaches {entry['target']:.4f} with {entry['random_labels']:.0f} labels")
        for strategy, s in entry["strategies"].items():
            needed = "never (within the run)" if s["labels_to_match_random"] is None else \
                f"{s['labels_to_match_random']:.0f} labels ({100 * s['labels_saved']:.0f}% fewer than random)"
            print(f"  {strategy:10s} final {s['mean'][-1]:.4f} ± {s['std'][-1]:.4f}; matches random with {needed}")
    print(f"\nwrote {args.out / 'curves.json'} and {args.out / 'learning_curves.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
