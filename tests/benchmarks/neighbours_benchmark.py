#!/usr/bin/env python
""""More like this" at catalogue scale and on real galaxies.

    python tests/benchmarks/neighbours_benchmark.py synthetic --n 1000000 --dim 256 --k 20
    SHARED_DATA=/work/shared/data python tests/benchmarks/neighbours_benchmark.py gz2 \\
        --encoder platform/demo/models/gz2_default.pt

synthetic: the platform's index (review.vectors, the settings' exact limit and nprobe) on N
clustered unit vectors (a Gaussian mixture of 1 000 centres: uniform random vectors have no
neighbours worth finding and no index could beat a scan on them): build time, the index's
bytes and the process's peak RSS, p50/p95 latency of single k-NN queries (one thread per
query, as a web request does) and recall@k against exact search (faiss flat) on held-out
queries drawn from the same mixture.

gz2: embeddings of the evaluation-split galaxies of gz2_kaggle by the shipped supervised
encoder; for every barred spiral (defined in ``barred``) the share of its k nearest
neighbours that are barred spirals, against the base rate. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "platform", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from review import vectors  # noqa: E402  (pure numpy/faiss: no Django needed)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build(ids: np.ndarray, data: np.ndarray, *, exact_limit: int, chunk: int = 100_000):
    index, kind = vectors.new_index(dim=data.shape[1], n_vectors=len(data), exact_limit=exact_limit)
    n = vectors.training_size(index)
    if n:
        vectors.train(index, data[:n])
    for s in range(0, len(data), chunk):
        vectors.add(index, ids[s:s + chunk], data[s:s + chunk])
    return index, kind


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def synthetic(args) -> None:
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    centres = rng.normal(size=(1000, args.dim)).astype(np.float32)
    labels = rng.integers(0, 1000, args.n + args.queries)
    data = centres[labels] + args.spread * rng.normal(size=(args.n + args.queries, args.dim)).astype(np.float32)
    data = data.astype(np.float16).astype(np.float32)  # the stored precision
    queries, data = data[args.n:], data[:args.n]
    ids = np.arange(1, args.n + 1, dtype=np.int64)
    print(f"{args.n:,} vectors, D={args.dim}, k={args.k}, {args.queries} queries, load {load()}", flush=True)
    started = time.perf_counter()
    index, kind = build(ids, data, exact_limit=args.exact_limit)
    build_seconds = time.perf_counter() - started
    size = len(vectors.to_bytes(index))
    print(f"build ({kind}): {build_seconds:.1f} s   index {size / 2**20:.0f} MiB   "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB   load {load()}", flush=True)
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(vectors.normalised(data))
    for nprobe in args.nprobe:
        times, recalls, exact_times = [], [], []
        for q in queries:
            started = time.perf_counter()
            found = vectors.search(index, q, k=args.k, nprobe=nprobe)
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            _, truth = exact.search(vectors.normalised(q[None, :]), args.k)
            exact_times.append(time.perf_counter() - started)
            recalls.append(len({i for i, _ in found} & set((truth[0] + 1).tolist())) / args.k)
        ms = [t * 1000 for t in times]
        print(f"nprobe {nprobe:>4}: p50 {statistics.median(ms):6.2f} ms  p95 {percentile(ms, 0.95):6.2f} ms   "
              f"recall@{args.k} mean {np.mean(recalls):.3f} (min {min(recalls):.2f})   exact flat scan p50 "
              f"{statistics.median(exact_times) * 1000:.1f} ms   load {load()}", flush=True)


def barred(catalog) -> np.ndarray:
    """A barred spiral, from the volunteers' GZ2 fractions (Kaggle's are cumulative: each
    question's answers sum to the share of volunteers who reached it): at least half reached
    the bar question (Class3.1 + Class3.2 ≥ 0.5: featured, not edge-on), at least half of
    those said bar (Class3.1 ≥ 0.5 of them) and at least half of those reaching the spiral
    question said spiral arms (Class4.1 ≥ 0.5 of Class4.1 + Class4.2)."""
    reached = catalog["Class3.1"].to_numpy() + catalog["Class3.2"].to_numpy()
    bar = catalog["Class3.1"].to_numpy() / np.maximum(reached, 1e-9)
    arms_reached = catalog["Class4.1"].to_numpy() + catalog["Class4.2"].to_numpy()
    arms = catalog["Class4.1"].to_numpy() / np.maximum(arms_reached, 1e-9)
    return (reached >= 0.5) & (bar >= 0.5) & (arms >= 0.5)


def gz2(args) -> None:
    import pandas as pd
    import torch

    from classifier.embeddings import encode_paths, load_encoder
    from classifier.splits import hash_split

    torch.set_num_threads(2)
    shared = Path(os.environ.get("SHARED_DATA", ROOT / ".." / "shared" / "data")).resolve()
    kaggle = shared / "gz2_kaggle"
    catalog = pd.read_csv(kaggle / "catalog.csv")
    evaluation = catalog.iloc[hash_split(catalog["GalaxyID"].tolist())["eval"]].reset_index(drop=True)
    paths = [kaggle / name for name in evaluation["file_loc"]]
    frozen = load_encoder(args.encoder)
    started = time.perf_counter()
    embedded = encode_paths(frozen, paths)
    print(f"{len(paths):,} evaluation galaxies embedded (D={embedded.shape[1]}) in "
          f"{time.perf_counter() - started:.0f} s, load {load()}", flush=True)
    embedded = embedded.astype(np.float16).astype(np.float32)
    is_barred = barred(evaluation)
    ids = np.arange(1, len(embedded) + 1, dtype=np.int64)
    index, kind = build(ids, embedded, exact_limit=10**9)  # a few thousand galaxies: exact
    precisions = []
    for i in np.flatnonzero(is_barred):
        found = [gid for gid, _ in vectors.search(index, embedded[i], k=args.k + 1, nprobe=1)
                 if gid != i + 1][:args.k]
        precisions.append(is_barred[np.asarray(found) - 1].mean())
    precisions = np.asarray(precisions)
    rng = np.random.default_rng(0)
    boot = [rng.choice(precisions, len(precisions)).mean() for _ in range(1000)]
    print(f"barred spirals: {is_barred.sum()} of {len(is_barred)} (base rate {is_barred.mean():.3f})")
    print(f"precision of their {args.k} nearest neighbours ({kind} index): mean {precisions.mean():.3f} "
          f"(95 % bootstrap interval {np.percentile(boot, 2.5):.3f}–{np.percentile(boot, 97.5):.3f}), "
          f"median {np.median(precisions):.3f}; lift {precisions.mean() / is_barred.mean():.1f}× the base rate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("synthetic")
    s.add_argument("--n", type=int, default=1_000_000)
    s.add_argument("--dim", type=int, default=256)
    s.add_argument("--k", type=int, default=20)
    s.add_argument("--queries", type=int, default=500)
    s.add_argument("--spread", type=float, default=0.6, help="noise around each mixture centre")
    s.add_argument("--exact-limit", type=int, default=100_000, help="REVIEW_EXACT_INDEX_LIMIT")
    s.add_argument("--nprobe", type=int, nargs="+", default=[8, 32, 128])
    s.add_argument("--seed", type=int, default=0)
    g = sub.add_parser("gz2")
    g.add_argument("--encoder", default=str(ROOT / "platform" / "demo" / "models" / "gz2_default.pt"))
    g.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    synthetic(args) if args.command == "synthetic" else gz2(args)


if __name__ == "__main__":
    main()
