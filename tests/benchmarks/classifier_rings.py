"""Real-data check: fine-tune a binary ring classifier from few labels (not a pytest test).

    python tests/benchmarks/classifier_rings.py --checkpoint GZ2_BEST.pt [--labels 50 100] [--seeds 0 1 2 3 4]

For each label budget and seed: draw that many labelled DECaLS galaxies from
``../shared/data/decals_rings`` (stratified), fine-tune from the GZ2-trained encoder with
:func:`classifier.finetune.finetune`, predict P(ring) with MC dropout on all other galaxies and
report ROC AUC and accuracy at 0.5 (mean ± std over seeds). ``--from-scratch`` makes the same
runs without the pretrained encoder instead: the baseline transfer learning has to beat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from classifier.data import resolve_paths  # noqa: E402
from classifier.finetune import finetune, finetune_config, sample_labelled  # noqa: E402
from classifier.predict import load_model  # noqa: E402

RINGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "decals_rings"


def run_once(catalog: pd.DataFrame, n_labels: int, seed: int, checkpoint: Path, settings: dict,
             pretrained: bool, work_dir: Path) -> dict[str, float]:
    labelled, held_out = sample_labelled(catalog, "ring", n_labels, seed)
    overrides = {**settings, "seed": seed, "device": "cpu"}
    if not pretrained:
        overrides.update(pretrained_encoder=None, trainable_encoder_blocks=None)
    config = finetune_config(checkpoint, **overrides)
    started = time.monotonic()
    result = finetune(labelled, label="ring", images_dir=RINGS, encoder_checkpoint=checkpoint,
                      out_dir=work_dir / f"{n_labels}_{seed}_{int(pretrained)}", config=config)
    seconds = time.monotonic() - started
    predictions = load_model(result.checkpoint_path, device="cpu").predict(list(resolve_paths(held_out, RINGS)))
    probability = predictions.fractions[:, 0]
    truth = held_out["ring"].to_numpy()
    return {"auc": roc_auc_score(truth, probability), "accuracy": float(((probability > 0.5) == truth).mean()),
            "seconds": seconds, "n_test": len(held_out)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path, help="GZ2-trained checkpoint (encoder source)")
    parser.add_argument("--labels", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--trainable-blocks", type=int, default=2, help="encoder blocks left trainable")
    parser.add_argument("--from-scratch", action="store_true", help="train without the pretrained encoder instead")
    args = parser.parse_args()
    if not RINGS.is_dir():
        sys.exit(f"real data not found at {RINGS.resolve()}")
    catalog = pd.read_csv(RINGS / "catalog.csv")
    print(f"{len(catalog)} DECaLS galaxies, {int(catalog['ring'].sum())} rings; encoder from {args.checkpoint}")
    modes = [False] if args.from_scratch else [True]
    settings = {"epochs": args.epochs, "patience": args.patience, "lr": args.lr,
                "trainable_encoder_blocks": args.trainable_blocks}
    print(f"settings: {settings}")
    with tempfile.TemporaryDirectory() as tmp:
        for pretrained in modes:
            for n_labels in args.labels:
                runs = [run_once(catalog, n_labels, seed, args.checkpoint, settings, pretrained, Path(tmp))
                        for seed in args.seeds]
                aucs = [r["auc"] for r in runs]
                accs = [r["accuracy"] for r in runs]
                spread = statistics.stdev(aucs) if len(aucs) > 1 else 0.0
                print(f"{'GZ2 encoder' if pretrained else 'from scratch':<13} {n_labels:>4} labels: "
                      f"ROC AUC {np.mean(aucs):.3f} ± {spread:.3f}  accuracy {np.mean(accs):.3f}  "
                      f"(seeds {args.seeds}, test {runs[0]['n_test']} galaxies, "
                      f"{np.mean([r['seconds'] for r in runs]):.0f} s per fine-tune)  AUCs {[round(a, 3) for a in aucs]}",
                      flush=True)


if __name__ == "__main__":
    main()
