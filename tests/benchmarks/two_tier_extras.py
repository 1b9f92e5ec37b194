"""Figures of the two-tier model besides the AL curves (see docs/classifier.md).

    python tests/benchmarks/two_tier_extras.py kaggle --embeddings /work/wt/artifacts/embeddings
    python tests/benchmarks/two_tier_extras.py rings --embeddings /work/wt/artifacts/embeddings
    python tests/benchmarks/two_tier_extras.py throughput

``kaggle``: Kaggle RMSE (37 shares) on the evaluation split of ``classifier.splits.hash_split``
for a head on frozen embeddings, trained on the votes of E (the encoder's own training
galaxies) or of E + P (all non-evaluation galaxies). ``rings``: ROC AUC of ring vs not from
50/100 labelled DECaLS galaxies (stratified, 5 seeds), logistic regression on frozen
embeddings. ``throughput``: the head path with embeddings stored, galaxies/s on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from classifier.acquisition import tree_bald  # noqa: E402
from classifier.data import read_catalog  # noqa: E402
from classifier.embeddings import load_embeddings  # noqa: E402
from classifier.finetune import sample_labelled  # noqa: E402
from classifier.heads import HeadConfig, mixture_nll, train_head  # noqa: E402
from classifier.kaggle import predicted_shares  # noqa: E402
from classifier.predict import mean_fractions  # noqa: E402
from classifier.schema import Schema  # noqa: E402
from classifier.splits import hash_split  # noqa: E402
from classifier.tree import DecisionTree  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()


def kaggle(args: argparse.Namespace) -> None:
    schema = Schema.from_tree(DecisionTree.load("gz2"))
    frame = pd.read_csv(SHARED / "gz2_kaggle" / "catalog.csv")
    data = read_catalog(frame, schema, SHARED / "gz2_kaggle", check_files=False)
    parts = hash_split(frame["GalaxyID"].tolist())
    mean_share = data.reference_shares[np.concatenate([parts["encoder"], parts["pool"]])].mean(0)
    baseline = np.sqrt(np.mean((data.reference_shares[parts["eval"]] - mean_share) ** 2))
    print(f"predicting the mean share: {baseline:.4f}")
    for name in args.encoders:
        _, emb = load_embeddings(args.embeddings / name / "gz2")
        for train_name, train_idx in (("E", parts["encoder"]), ("E+P", np.concatenate([parts["encoder"], parts["pool"]]))):
            for kind in ("ensemble", "mc_dropout"):
                config = HeadConfig(kind=kind, hidden=args.hidden, steps=args.steps, seed=0)
                cpu = time.process_time()
                head = train_head(emb[train_idx], data.counts[train_idx], schema, config)
                cpu = time.process_time() - cpu
                conc = head.sample_concentrations(emb[parts["eval"]])
                rmse = np.sqrt(np.mean((predicted_shares(mean_fractions(conc, schema), schema)
                                        - data.reference_shares[parts["eval"]]) ** 2))
                loss = mixture_nll(conc, data.counts[parts["eval"]], schema).mean()
                print(f"{name:10s} head {kind:10s} trained on {train_name:3s} ({len(train_idx)}): Kaggle RMSE {rmse:.4f}  "
                      f"loss {loss:.2f}  head training {head.train_seconds:.1f}s wall, {cpu:.1f}s CPU", flush=True)


def rings(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    catalog = pd.read_csv(SHARED / "decals_rings" / "catalog.csv")
    for name in args.encoders:
        ids, emb = load_embeddings(args.embeddings / name / "rings")
        if ids != catalog["id_str"].astype(str).tolist():
            raise SystemExit(f"{name}: ring embeddings do not match the catalogue")
        for n_labels in args.labels:
            for c in args.c:
                aucs = []
                for seed in args.seeds:
                    labelled, held_out = sample_labelled(catalog, "ring", n_labels, seed)
                    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
                    model.fit(emb[labelled.index], labelled["ring"])
                    aucs.append(roc_auc_score(held_out["ring"], model.predict_proba(emb[held_out.index])[:, 1]))
                print(f"{name:10s} {n_labels:4d} labels, logistic C={c:<5}: ROC AUC {np.mean(aucs):.3f} ± {np.std(aucs, ddof=1):.3f} "
                      f"(seeds {args.seeds}: {[round(a, 3) for a in aucs]})", flush=True)


def throughput(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(2)
    schema = Schema.from_tree(DecisionTree.load("gz2"))
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(args.galaxies, 256)).astype(np.float32)
    counts = rng.multinomial(40, np.full(3, 1 / 3), size=2000)
    full = np.zeros((2000, schema.n_answers), dtype=np.float32)
    full[:, :3] = counts
    for kind, passes in (("ensemble", 8), ("mc_dropout", 8), ("mc_dropout", 32)):
        head = train_head(emb[:2000], full, schema, HeadConfig(kind=kind, mc_passes=passes))
        times = []
        for _ in range(3):
            started = time.perf_counter()
            head.sample_concentrations(emb)
            times.append(time.perf_counter() - started)
        sample_rate = args.galaxies / np.median(times)
        conc = head.sample_concentrations(emb[:args.bald_galaxies])
        started = time.perf_counter()
        tree_bald(conc, schema, 40, exact_limit=300, mc_samples=64)
        bald_rate = args.bald_galaxies / (time.perf_counter() - started)
        print(f"{kind:10s} T={passes:2d}: head training (2,000 labels) {head.train_seconds:.1f}s; "
              f"concentration samples {sample_rate:,.0f} galaxies/s; tree BALD {bald_rate:,.0f} galaxies/s; "
              f"both {1 / (1 / sample_rate + 1 / bald_rate):,.0f} galaxies/s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("kaggle")
    p.add_argument("--embeddings", type=Path, required=True)
    p.add_argument("--encoders", nargs="+", default=["supervised", "ssl", "random"])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--steps", type=int, default=1000)
    p = commands.add_parser("rings")
    p.add_argument("--embeddings", type=Path, required=True)
    p.add_argument("--encoders", nargs="+", default=["supervised", "ssl", "random"])
    p.add_argument("--labels", type=int, nargs="+", default=[50, 100])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--c", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p = commands.add_parser("throughput")
    p.add_argument("--galaxies", type=int, default=100_000)
    p.add_argument("--bald-galaxies", type=int, default=2000)
    args = parser.parse_args()
    {"kaggle": kaggle, "rings": rings, "throughput": throughput}[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
