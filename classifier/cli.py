"""``python -m classifier {train,predict,evaluate,acquire,finetune}``.

Contract relied on by scripts::

    python -m classifier train --catalog CSV --images DIR --schema {gz2,decals_dr5,FILE.json} --out DIR [--epochs N] [--device cpu|cuda]
    python -m classifier evaluate --checkpoint FILE --catalog CSV --images DIR --json OUT

Errors in the inputs (missing or unknown columns, unreadable images, a checkpoint for another
tree) print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from classifier.acquisition import ACQUISITION_FUNCTIONS, score
from classifier.data import DIHEDRAL_VIEWS, CatalogError, ImageLoadError, read_catalog
from classifier.finetune import finetune, finetune_config, sample_labelled
from classifier.kaggle import KaggleFormatError
from classifier.metrics import evaluate, format_table
from classifier.predict import load_model
from classifier.schema import SchemaMismatchError, resolve_schema
from classifier.training import TrainConfig, TrainingCancelled, train
from classifier.tree import TreeDefinitionError

USER_ERRORS = (CatalogError, ImageLoadError, KaggleFormatError, SchemaMismatchError, TreeDefinitionError,
               FileNotFoundError, TrainingCancelled)


def _add_catalog_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", required=True, help="CSV with id_str, file_loc (and vote counts), or Kaggle format")
    parser.add_argument("--images", default=None, help="directory that relative file_loc paths start from")
    parser.add_argument("--format", default="auto", choices=["auto", "zoobot", "kaggle"],
                        help="catalog format; auto detects Kaggle (GalaxyID, Class1.1 ...)")


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _widths(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated channel counts, e.g. 32,64,128,256; got {text}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"channel counts must be positive, got {text}")
    return widths


def _add_views_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--views", type=int, default=1, choices=range(1, DIHEDRAL_VIEWS + 1), metavar="{1..8}",
                        help="test-time augmentation: spread the T samples over this many of the 8 rotations/flips "
                             "(use T >= views)")


def _add_training_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--architecture", help="'compact' or a timm model name, e.g. efficientnet_b0")
    parser.add_argument("--image-size", type=int, help="network input size in pixels")
    parser.add_argument("--channels", type=int, choices=[1, 3], help="1 = greyscale, 3 = colour")
    parser.add_argument("--crop-fraction", type=_fraction,
                        help="central fraction of each image the network sees (0.5 suits GZ2/Kaggle cutouts)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="AdamW learning rate")
    parser.add_argument("--patience", type=int, help="early-stopping patience in epochs")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--trainable-blocks", type=int, help="freeze the encoder except its last N blocks")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")


def _training_overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {"epochs": "epochs", "architecture": "architecture", "image_size": "image_size", "channels": "channels",
             "crop_fraction": "crop_fraction", "batch_size": "batch_size", "lr": "lr", "patience": "patience",
             "seed": "seed", "trainable_blocks": "trainable_encoder_blocks", "widths": "widths"}
    out = {field: getattr(args, arg) for arg, field in names.items() if getattr(args, arg, None) is not None}
    out["device"] = args.device
    return out


def _progress_printer(quiet: bool):
    def report(event: dict[str, Any]) -> None:
        if not quiet and event["stage"] == "epoch_end":
            print(f"epoch {event['epoch']}/{event['epochs']}  train_loss {event['train_loss']:.3f}  "
                  f"val_loss {event['val_loss']:.3f}", file=sys.stderr, flush=True)
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m classifier",
                                     description="Bayesian CNN for Galaxy Zoo decision trees (vote counts in, posteriors out).")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="train on vote counts; writes best.pt and last.pt into --out")
    _add_catalog_args(p)
    p.add_argument("--schema", required=True, help="gz2, decals_dr5 or a tree JSON file")
    p.add_argument("--out", required=True, help="output directory for checkpoints and metrics.json")
    _add_training_args(p)
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--widths", type=_widths, help="compact CNN channels per block, e.g. 48,96,192,384")
    p.add_argument("--fast", action="store_true", help="tiny CPU config (48 px, few epochs) for smoke runs")
    p.add_argument("--resume", action="store_true", help="continue from --out/last.pt")
    p.add_argument("--init-checkpoint", help="warm start from a checkpoint of the same tree")
    p.add_argument("--pretrained-encoder", help="local file with encoder weights (never downloads)")

    p = commands.add_parser("predict", help="vote-fraction posteriors as CSV ({question}_{answer}_fraction columns)")
    _add_catalog_args(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--samples", type=int, default=5, help="MC-dropout passes T")
    _add_views_arg(p)
    p.add_argument("--device", default="auto")

    p = commands.add_parser("evaluate", help="metrics table on stdout, JSON file with all metrics")
    _add_catalog_args(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--json", required=True, help="output JSON file")
    p.add_argument("--samples", type=int, default=5)
    _add_views_arg(p)
    p.add_argument("--device", default="auto")
    p.add_argument("--min-votes", type=int, default=10, help="votes needed for accuracy and calibration")
    p.add_argument("--confident", type=float, default=0.8, help="top vote fraction for a 'confident' galaxy")

    p = commands.add_parser("acquire", help="rank a catalog by expected information gain (or entropy, random)")
    _add_catalog_args(p)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="output CSV: id_str, score, rank")
    p.add_argument("--method", default="bald", choices=ACQUISITION_FUNCTIONS)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--n-total", type=float, default=40, help="votes a galaxy would receive")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")

    p = commands.add_parser("finetune", help="new binary task (e.g. ring) from a few labels and a trained encoder")
    _add_catalog_args(p)
    p.add_argument("--label", required=True, help="0/1 label column, e.g. ring")
    p.add_argument("--checkpoint", required=True, help="checkpoint whose encoder is the starting point")
    p.add_argument("--out", required=True)
    p.add_argument("--labels", type=int, help="use only this many labelled galaxies (stratified sample)")
    _add_training_args(p)
    return parser


def _cmd_train(args: argparse.Namespace) -> int:
    tree = resolve_schema(args.schema).tree
    overrides = _training_overrides(args)
    if args.val_fraction is not None:
        overrides["val_fraction"] = args.val_fraction
    if args.pretrained_encoder:
        overrides["pretrained_encoder"] = args.pretrained_encoder
    config = TrainConfig.fast_cpu(**overrides) if args.fast else TrainConfig(**overrides)
    catalog = read_catalog(args.catalog, resolve_schema(tree), args.images, fmt=args.format)
    started = time.monotonic()
    result = train(catalog, images_dir=args.images, tree=tree, out_dir=Path(args.out), config=config,
                   progress=_progress_printer(args.quiet), resume=args.resume,
                   init_checkpoint=Path(args.init_checkpoint) if args.init_checkpoint else None)
    _write_json(Path(args.out) / "metrics.json", result.metrics)
    print(f"checkpoint: {result.checkpoint_path}  ({time.monotonic() - started:.0f} s)")
    print(format_table(result.metrics))
    return 0


def _predict_catalog(args: argparse.Namespace, require_counts: bool):
    predictor = load_model(args.checkpoint, args.device)
    catalog = read_catalog(args.catalog, predictor.schema, args.images, fmt=args.format, require_counts=require_counts)
    predictions = predictor.predict(catalog.paths, n_samples=args.samples, ids=list(catalog.frame["id_str"]),
                                    views=getattr(args, "views", 1))
    return predictor, catalog, predictions


def _cmd_predict(args: argparse.Namespace) -> int:
    _, _, predictions = _predict_catalog(args, require_counts=False)
    predictions.to_frame().to_csv(args.out, index=False)
    print(f"wrote {len(predictions.ids)} predictions to {args.out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    predictor, catalog, predictions = _predict_catalog(args, require_counts=True)
    metrics = evaluate(predictions.concentrations, catalog.counts, predictor.schema,
                       reference_shares=catalog.reference_shares, min_votes=args.min_votes,
                       confident_fraction=args.confident, lower=predictions.lower, upper=predictions.upper)
    metrics["checkpoint"] = str(args.checkpoint)
    _write_json(Path(args.json), metrics)
    print(format_table(metrics))
    return 0


def _cmd_acquire(args: argparse.Namespace) -> int:
    predictor, catalog, predictions = _predict_catalog(args, require_counts=False)
    started = time.monotonic()
    scores = score(predictions.concentrations, predictor.schema, args.method, n_total=args.n_total, seed=args.seed)
    elapsed = max(time.monotonic() - started, 1e-9)
    order = np.argsort(-scores, kind="stable")
    ranked = pd.DataFrame({"id_str": np.asarray(predictions.ids)[order], "score": scores[order],
                           "rank": np.arange(1, len(order) + 1)})
    ranked.to_csv(args.out, index=False)
    print(f"ranked {len(ranked)} galaxies by {args.method} ({len(ranked) / elapsed:.0f} galaxies/s scored) -> {args.out}")
    return 0


def _cmd_finetune(args: argparse.Namespace) -> int:
    try:
        catalog = pd.read_csv(args.catalog)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CatalogError(f"cannot read catalog {args.catalog}: {exc}") from exc
    if args.label not in catalog.columns:
        raise CatalogError(f"catalog lacks the label column '{args.label}'")
    if args.labels is not None:
        labelled = catalog.loc[catalog[args.label].notna()].reset_index(drop=True)
        catalog = sample_labelled(labelled, args.label, args.labels, args.seed or 0)[0]
    result = finetune(catalog, label=args.label, images_dir=args.images, encoder_checkpoint=args.checkpoint,
                      out_dir=Path(args.out), config=finetune_config(args.checkpoint, **_training_overrides(args)),
                      progress=_progress_printer(args.quiet))
    _write_json(Path(args.out) / "metrics.json", result.metrics)
    print(f"checkpoint: {result.checkpoint_path}")
    print(format_table(result.metrics))
    return 0


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=float))


COMMANDS = {"train": _cmd_train, "predict": _cmd_predict, "evaluate": _cmd_evaluate, "acquire": _cmd_acquire,
            "finetune": _cmd_finetune}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
