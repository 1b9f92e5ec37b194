"""Build the heavy tier for the two-tier simulation: encoders and their stored embeddings.

    # the fixed split as catalogues (gz2_eval.csv, gz2_encoder.csv, gz2_pool.csv):
    python tests/benchmarks/two_tier_encoders.py split --out /work/wt/artifacts
    # the supervised encoder: the CNN on the encoder split's votes only
    python -m classifier train --catalog /work/wt/artifacts/gz2_encoder.csv --images ../shared/data/gz2_kaggle \
        --schema gz2 --out /work/wt/artifacts/encoder_supervised --epochs 18 --image-size 64 --crop-fraction 0.5 \
        --batch-size 64 --lr 2e-3 --patience 6 --seed 0 --device cpu
    # self-supervised (SimCLR via lightly) on every gz2_kaggle image, no votes:
    python tests/benchmarks/two_tier_encoders.py ssl --out /work/wt/artifacts/encoder_ssl.pt --epochs 10
    # embeddings of every gz2_kaggle and decals_rings galaxy for each encoder:
    python tests/benchmarks/two_tier_encoders.py embed --encoder supervised=/work/wt/artifacts/encoder_supervised/best.pt \\
        --encoder ssl=/work/wt/artifacts/encoder_ssl.pt --encoder random=random --out /work/wt/artifacts/embeddings

The supervised encoder is ``python -m classifier train`` on the encoder split E only (see
docs/active_learning.md); the split is ``classifier.splits.hash_split`` of ``GalaxyID``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from classifier.data import load_images, resolve_paths  # noqa: E402
from classifier.embeddings import encode_paths, load_encoder, random_encoder, save_embeddings  # noqa: E402
from classifier.splits import hash_split  # noqa: E402
from classifier.ssl import SSLConfig, train_ssl_encoder  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
KAGGLE = SHARED / "gz2_kaggle"
RINGS = SHARED / "decals_rings"


def run_split(args: argparse.Namespace) -> None:
    frame = pd.read_csv(KAGGLE / "catalog.csv")
    args.out.mkdir(parents=True, exist_ok=True)
    for name, index in hash_split(frame["GalaxyID"].tolist()).items():
        frame.iloc[index].to_csv(args.out / f"gz2_{name}.csv", index=False)
        print(f"{name}: {len(index)} galaxies -> {args.out / f'gz2_{name}.csv'}")


def run_ssl(args: argparse.Namespace) -> None:
    frame = pd.read_csv(KAGGLE / "catalog.csv")
    config = SSLConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, temperature=args.temperature)
    started = time.monotonic()
    cpu0 = time.process_time()
    images = load_images(list(resolve_paths(frame, KAGGLE)), config.preprocessing())
    print(f"decoded {len(images)} images in {time.monotonic() - started:.0f}s", flush=True)
    train_ssl_encoder(images, config=config, out_path=args.out,
                      progress=lambda h: print(f"epoch {h['epoch']}/{config.epochs} loss {h['loss']:.4f} "
                                               f"{h['seconds']:.0f}s", flush=True))
    print(f"wrote {args.out}; {time.monotonic() - started:.0f}s wall, {time.process_time() - cpu0:.0f}s CPU", flush=True)


def run_embed(args: argparse.Namespace) -> None:
    gz2 = pd.read_csv(KAGGLE / "catalog.csv")
    rings = pd.read_csv(RINGS / "catalog.csv")
    for spec in args.encoder:
        name, _, source = spec.partition("=")
        frozen = random_encoder(seed=0) if source == "random" else load_encoder(source)
        for dataset, frame, base, ids in (("gz2", gz2, KAGGLE, gz2["GalaxyID"].astype(str)),
                                          ("rings", rings, RINGS, rings["id_str"].astype(str))):
            started = time.monotonic()
            embeddings = encode_paths(frozen, list(resolve_paths(frame, base)), views=args.views)
            out = save_embeddings(args.out / name / dataset, list(ids), embeddings)
            print(f"{name} {dataset}: {embeddings.shape} in {time.monotonic() - started:.0f}s -> {out}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("split")
    p.add_argument("--out", type=Path, required=True)
    p = commands.add_parser("ssl")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--temperature", type=float, default=0.2)
    p = commands.add_parser("embed")
    p.add_argument("--encoder", action="append", required=True, help="NAME=checkpoint.pt, or NAME=random")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--views", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(2)
    {"split": run_split, "ssl": run_ssl, "embed": run_embed}[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
