#!/usr/bin/env python
"""Time from "retrain" to new queue priorities for a 10k-galaxy catalogue on CPU with the
compact model (goal: at most 5 minutes).

    python tests/benchmarks/retrain_benchmark.py                       # 10k galaxies, 2k labelled, SQLite
    python tests/benchmarks/retrain_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/retrain_bench
    python tests/benchmarks/retrain_benchmark.py --galaxies 2000 --labelled 500 --epochs 2

It builds a throw-away database and MEDIA_ROOT, draws synthetic galaxies (64×64 JPEG
Sérsic-like blobs of random size, ellipticity, brightness, some with two-armed spirals) and
simulated votes that follow those parameters, then runs the same pipeline the Celery tasks
run (snapshot → train → hold-out metrics → catalogue prediction in chunks → activation and
priority swap) in this process, once as a full retrain and once warm-started from the first
model. Broker hops (milliseconds) are not included. Figures are wall-clock seconds on
whatever machine runs it (the reference machine: 2 shared CPU cores); nothing asserts on them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "platform", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from workflows.shipped import DECALS_DR5  # noqa: E402

IMAGE_SIZE = 64
WORKFLOW = DECALS_DR5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, default=10_000)
    parser.add_argument("--labelled", type=int, default=2_000, help="galaxies with simulated votes")
    parser.add_argument("--votes", type=int, default=10, help="simulated votes per labelled galaxy")
    parser.add_argument("--epochs", type=int, default=None, help="override the fast_cpu preset's epochs")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def galaxy_image(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
    """A smooth elliptical blob, with a two-armed spiral added to about half of them."""
    radius, ellipticity = rng.uniform(4, 14), rng.uniform(0.0, 0.7)
    angle, brightness = rng.uniform(0, np.pi), rng.uniform(0.4, 1.0)
    spiral = rng.random() < 0.5
    y, x = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE] - (IMAGE_SIZE - 1) / 2
    u = x * np.cos(angle) + y * np.sin(angle)
    v = (-x * np.sin(angle) + y * np.cos(angle)) / (1 - ellipticity)
    r = np.hypot(u, v)
    light = np.exp(-(r / radius) ** 0.7)
    if spiral:
        light *= 1 + 0.6 * np.cos(2 * np.arctan2(v, u) - 1.5 * np.log1p(r)) * (r > radius / 3)
    light = brightness * light / light.max() + rng.normal(0, 0.03, light.shape)
    rgb = np.clip(np.stack([light * 0.9, light, light * 1.1], -1) * 255, 0, 255).astype(np.uint8)
    return rgb, {"ellipticity": ellipticity, "spiral": spiral}


def simulated_votes(params: dict[str, float], n: int, rng: np.random.Generator) -> dict[str, int]:
    """Volunteers see features in spirals and in flat (edge-on looking) discs, with noise."""
    p_featured = 0.15 + 0.7 * params["spiral"] + 0.1 * (params["ellipticity"] > 0.5)
    counts: dict[str, int] = {}

    def add(column: str, k: int) -> None:
        if k:
            counts[column] = counts.get(column, 0) + int(k)

    featured = rng.binomial(n, min(p_featured, 0.95))
    add("smooth-or-featured_smooth", n - featured)
    add("how-rounded_round", n - featured)
    add("merging_none", n)
    edge_on = rng.binomial(featured, 0.8 if params["ellipticity"] > 0.6 else 0.1)
    add("smooth-or-featured_featured-or-disk", featured)
    add("disk-edge-on_yes", edge_on)
    add("edge-on-bulge_none", edge_on)
    add("disk-edge-on_no", featured - edge_on)
    add("bar_no", featured - edge_on)
    arms = rng.binomial(featured - edge_on, 0.9 if params["spiral"] else 0.2)
    add("has-spiral-arms_yes", arms)
    add("spiral-winding_medium", arms)
    add("spiral-arm-count_2", arms)
    add("has-spiral-arms_no", featured - edge_on - arms)
    add("bulge-size_moderate", featured - edge_on)
    return counts


def build_catalogue(args: argparse.Namespace) -> None:
    from django.conf import settings
    from PIL import Image

    from classifications.models import SubjectStatus
    from classifications.services import ensure_subject_statuses
    from galaxies.models import Galaxy
    from workflows.models import Workflow

    rng = np.random.default_rng(args.seed)
    folder = Path(settings.MEDIA_ROOT) / "galaxies"
    folder.mkdir(parents=True, exist_ok=True)
    galaxies, params = [], {}
    for i in range(args.galaxies):
        pixels, params[f"SYN{i:06d}"] = galaxy_image(rng)
        Image.fromarray(pixels).save(folder / f"syn{i:06d}.jpg", quality=90)
        galaxies.append(Galaxy(id_str=f"SYN{i:06d}", ra=float(rng.uniform(0, 360)), dec=float(rng.uniform(-60, 60)),
                               survey="synthetic", image=f"galaxies/syn{i:06d}.jpg", is_simulated=True))
    Galaxy.objects.bulk_create(galaxies, batch_size=2000)
    workflow = Workflow.objects.get(slug=WORKFLOW)
    ensure_subject_statuses(workflow=workflow)
    statuses = list(SubjectStatus.objects.filter(workflow=workflow).select_related("galaxy")
                    .order_by("?")[:args.labelled])
    for status in statuses:
        status.vote_counts = simulated_votes(params[status.galaxy.id_str], args.votes, rng)
        status.classification_count = args.votes
    SubjectStatus.objects.bulk_update(statuses, ["vote_counts", "classification_count"], batch_size=2000)


def time_run(*, full_retrain: bool, overrides: dict) -> dict[str, float]:
    from retraining.models import Prediction, TrainingRun
    from retraining.pipeline import execute_run_inline
    from retraining.runs import start_training_run
    from workflows.models import Workflow

    workflow = Workflow.objects.get(slug=WORKFLOW)
    trigger, cpu = time.perf_counter(), time.process_time()
    run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.ADMIN, full_retrain=full_retrain,
                             overrides=overrides)
    run = execute_run_inline(run_id=run.pk, log=lambda _m: None)
    total, cpu = time.perf_counter() - trigger, time.process_time() - cpu
    if run.status != TrainingRun.Status.SUCCEEDED:
        raise SystemExit(f"run {run.pk} {run.status}: {run.error}")
    version = run.model_version
    return {"total": total, "cpu": cpu, "train": (run.trained_at - run.started_at).total_seconds(),
            "predict_apply": (run.finished_at - run.trained_at).total_seconds(),
            "epochs": len(run.history), "n_train": run.snapshot_galaxies, "n_holdout": run.snapshot_holdout_galaxies,
            "predictions": Prediction.objects.filter(model_version=version).count(),
            "holdout_rmse": version.metrics.get("rmse") or float("nan"), "device": run.device}


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="retrain-bench-"))
    os.environ.update({"VAR_DIR": str(workdir / "var"), "MEDIA_ROOT": str(workdir / "media"),
                       "RETRAIN_AFTER_CLASSIFICATIONS": "0", "DJANGO_SETTINGS_MODULE": "config.settings"})
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    import django
    from django.core.management import call_command

    django.setup()
    if args.database_url:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    build_catalogue(args)
    print(f"catalogue: {args.galaxies} synthetic galaxies ({args.labelled} with {args.votes} simulated votes) "
          f"built in {time.perf_counter() - started:.0f} s under {workdir}")
    overrides = {} if args.epochs is None else {"epochs": args.epochs}
    print(f"{'run':<14}{'trigger→priorities':>20}{'(CPU s)':>9}{'train':>8}{'predict+apply':>15}{'epochs':>8}"
          f"{'train/holdout':>15}{'predicted':>11}{'holdout RMSE':>14}")
    for label, full in (("full retrain", True), ("warm start", False)):
        r = time_run(full_retrain=full, overrides=overrides)
        print(f"{label:<14}{r['total']:>19.1f}s{r['cpu']:>9.0f}{r['train']:>7.1f}s{r['predict_apply']:>14.1f}s{r['epochs']:>8}"
              f"{r['n_train']:>9}/{r['n_holdout']:<5}{r['predictions']:>11}{r['holdout_rmse']:>14.4f}", flush=True)
    print(f"torch threads: {__import__('torch').get_num_threads()} on {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} (CPU s = this process's CPU time, all threads); goal: trigger→priorities ≤ 300 s")


if __name__ == "__main__":
    main()
