#!/usr/bin/env python
"""Votes → new queue priorities through a head refresh, for a 100k-galaxy catalogue on CPU
(goal: at most 60 s on 2 cores; a full encoder retrain took 166 s for 10k galaxies).

    python tests/benchmarks/head_refresh_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/galaxy_j
    python tests/benchmarks/head_refresh_benchmark.py --galaxies 10000 --labelled 1000     # SQLite, smaller
    python tests/benchmarks/head_refresh_benchmark.py ... --precise-top 0   # tree BALD at the defaults for all

It builds the catalogue as the platform stores it — galaxies, status rows with vote tallies,
an active encoder version with its predictions and one float16 embedding per galaxy in
``GalaxyEmbedding`` (synthetic, of the real dimension: 256, the pooled width of the compact
encoder's default ``widths``) — then times one head refresh exactly as the ``refresh_head``
task runs it (``pipeline.refresh_head``): load embeddings and tallies, train the head (a deep
ensemble, ``HeadConfig()`` defaults), score every unretired galaxy (head samples, tree BALD,
entropy, fractions, 90% intervals), then version + predictions + activation + priority swap in
one transaction, then pruning of old heads. The embeddings follow two hidden galaxy
parameters (featured, edge-on) plus noise and the votes follow the same parameters, so the head
has something to learn. Finally the MC inference throughput of the head path (galaxies/s for
the head's T samples, and for the whole scoring step). Wall-clock seconds on whatever machine
runs it (the reference machine: 2 shared CPU cores); nothing asserts on them.
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

DIM = 256


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, default=100_000)
    parser.add_argument("--labelled", type=int, default=5_000, help="galaxies with simulated vote tallies")
    parser.add_argument("--votes", type=int, default=10, help="simulated votes per labelled galaxy")
    parser.add_argument("--refreshes", type=int, default=2, help="head refreshes timed back to back")
    parser.add_argument("--precise-top", type=int, default=None, help="HEAD_REFRESH_PRECISE_TOP (default: setting)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--throughput-galaxies", type=int, default=20_000,
                        help="galaxies of the scoring-step throughput comparison")
    parser.add_argument("--coverage-labels", type=int, default=None,
                        help="QUEUE_COVERAGE_LABELS (default: setting); with --labelled below it the queue's "
                             "TypiClust start runs in every refresh")
    parser.add_argument("--acquisition", default=None, help="QUEUE_ACQUISITION: bald or power-bald (default: setting)")
    parser.add_argument("--skip-throughput", action="store_true", help="only the refreshes")
    return parser.parse_args()


def tallies(featured: float, edge_on: float, n: int, rng: np.random.Generator) -> dict[str, int]:
    k_featured = rng.binomial(n, 0.1 + 0.8 * featured)
    k_edge = rng.binomial(k_featured, 0.1 + 0.8 * edge_on)
    counts = {"smooth-or-featured_smooth": n - k_featured, "smooth-or-featured_featured-or-disk": k_featured,
              "how-rounded_round": n - k_featured, "disk-edge-on_yes": k_edge, "disk-edge-on_no": k_featured - k_edge,
              "edge-on-bulge_none": k_edge, "has-spiral-arms_yes": k_featured - k_edge, "merging_none": n}
    return {k: int(v) for k, v in counts.items() if v}


def build_catalogue(args: argparse.Namespace) -> None:
    from django.db import connection

    from classifications.models import SubjectStatus
    from classifications.services import ensure_subject_statuses
    from classifier.live_head import embedding_bytes
    from galaxies.models import Galaxy
    from retraining.models import GalaxyEmbedding, ModelVersion, Prediction
    from retraining.services import activate_model_version
    from workflows.models import Workflow

    rng = np.random.default_rng(args.seed)
    workflow = Workflow.objects.get(slug=DECALS_DR5)
    Galaxy.objects.bulk_create([Galaxy(id_str=f"SYN{i:06d}", ra=float(rng.uniform(0, 360)),
                                       dec=float(rng.uniform(-60, 60)), survey="synthetic",
                                       image=f"galaxies/syn{i:06d}.jpg", is_simulated=True)
                                for i in range(args.galaxies)], batch_size=5000)
    ensure_subject_statuses(workflow=workflow)
    ids = np.asarray(SubjectStatus.objects.filter(workflow=workflow).order_by("galaxy_id")
                     .values_list("galaxy_id", flat=True))
    featured, edge_on = rng.random(len(ids)), rng.random(len(ids))
    directions = rng.normal(size=(2, DIM)).astype(np.float32)
    embeddings = np.maximum(0, np.outer(featured, directions[0]) + np.outer(edge_on, directions[1])
                            + rng.normal(0, 0.5, size=(len(ids), DIM))).astype(np.float32)
    answer_columns = list(workflow.decision_tree.answer_columns)
    encoder = ModelVersion.objects.create(workflow=workflow, number=1, checkpoint="models/bench-encoder.pt",
                                          checkpoint_sha256="0" * 64, tree_hash=workflow.tree_hash,
                                          answer_columns=answer_columns, predictions_complete=True)
    uniform = [round(1 / len(answer_columns), 5)] * len(answer_columns)
    Prediction.objects.bulk_create([Prediction(model_version=encoder, galaxy_id=int(g), fractions=uniform,
                                               lower=uniform, upper=uniform, acquisition=float(rng.random()),
                                               entropy=0.0) for g in ids], batch_size=5000)
    GalaxyEmbedding.objects.bulk_create([GalaxyEmbedding(model_version=encoder, galaxy_id=int(g), vector=v)
                                         for g, v in zip(ids, embedding_bytes(embeddings))], batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    activate_model_version(model_version_id=encoder.pk)
    labelled = rng.choice(len(ids), size=min(args.labelled, len(ids)), replace=False)
    statuses = {s.galaxy_id: s for s in SubjectStatus.objects.filter(workflow=workflow, galaxy_id__in=ids[labelled])}
    for index in labelled:
        status = statuses[int(ids[index])]
        status.vote_counts = tallies(featured[index], edge_on[index], args.votes, rng)
        status.classification_count = args.votes
    SubjectStatus.objects.bulk_update(list(statuses.values()), ["vote_counts", "classification_count"],
                                      batch_size=5000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")


def database_cpu_seconds() -> float:
    """CPU seconds of this connection's PostgreSQL backend so far (same machine: /proc), else 0:
    the writes' COPY, ANALYZE and priority UPDATE run there, outside this process's CPU time."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_refresh() -> dict[str, float]:
    from retraining.models import Prediction, TrainingRun
    from retraining.pipeline import refresh_head
    from retraining.runs import start_training_run
    from workflows.models import Workflow

    workflow = Workflow.objects.get(slug=DECALS_DR5)
    timings: dict[str, float] = {}
    trigger, cpu, db_cpu = time.perf_counter(), time.process_time(), database_cpu_seconds()
    run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.SCHEDULE, kind=TrainingRun.Kind.HEAD)
    refresh_head(run_id=run.pk, timings=timings)
    timings["total"], timings["cpu"] = time.perf_counter() - trigger, time.process_time() - cpu
    timings["db_cpu"] = database_cpu_seconds() - db_cpu
    run.refresh_from_db()
    if run.status != TrainingRun.Status.SUCCEEDED:
        raise SystemExit(f"run {run.pk} {run.status}: {run.error}")
    timings["predictions"] = Prediction.objects.filter(model_version=run.model_version).count()
    timings["holdout_rmse"] = run.model_version.metrics.get("rmse", float("nan"))
    return timings


def throughput(args: argparse.Namespace) -> None:
    """Galaxies/s of the head path on stored embeddings: the head's T samples alone, and the
    whole scoring step (samples, tree BALD, entropy, intervals), for both posteriors."""
    from django.conf import settings

    from classifier.heads import HeadConfig, train_head
    from classifier.live_head import SCORE_CHUNK, BaldPlan, score_embeddings
    from retraining.models import ModelVersion
    from retraining.pipeline import head_training_set, load_embeddings
    from workflows.models import Workflow

    workflow = Workflow.objects.get(slug=DECALS_DR5)
    encoder = ModelVersion.objects.get(workflow=workflow, number=1)
    ids, embeddings = load_embeddings(model_version_id=encoder.pk)
    voted, counts, _, _ = head_training_set(workflow=workflow)
    rows = np.searchsorted(ids, voted)
    from classifier.schema import Schema

    schema = Schema(workflow.decision_tree)
    sample = embeddings[:min(len(embeddings), args.throughput_galaxies)]
    # The refresh's share of precise galaxies (5,000 of 100k = 5%), and precise for all.
    share = settings.HEAD_REFRESH_PRECISE_TOP / max(len(embeddings), 1)
    plans = {"screened": BaldPlan(precise_top=max(1, round(share * len(sample)))),
             "precise": BaldPlan(precise_top=0)}
    for config in (HeadConfig(), HeadConfig(kind="mc_dropout", mc_passes=32)):
        head = train_head(embeddings[rows], counts, schema, config)
        started, cpu = time.perf_counter(), time.process_time()
        samples = head.sample_concentrations(embeddings)
        sampling, sampling_cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"  {config.kind:<11} T={samples.shape[1]:>3}: head samples {len(embeddings) / sampling:>9,.0f} galaxies/s "
              f"({len(embeddings):,} in {sampling:.2f} s wall, {sampling_cpu:.2f} s CPU)", flush=True)
        for label, plan in plans.items():
            # One call over the sample (the previous refresh), then SCORE_CHUNK-galaxy chunks on 1 and 2 threads.
            for chunk, workers in ((len(sample), 1), (SCORE_CHUNK, 1), (SCORE_CHUNK, 2)):
                started, cpu = time.perf_counter(), time.process_time()
                score_embeddings(head, sample, n_total=workflow.retirement_count, plan=plan, chunk=chunk,
                                 workers=workers)
                wall, used = time.perf_counter() - started, time.process_time() - cpu
                print(f"      whole scoring step, tree BALD {label:<8}, chunks of {chunk:>6,} on {workers} thread(s): "
                      f"{len(sample) / wall:>6,.0f} galaxies/s wall, {len(sample) / used:>6,.0f} per CPU-second "
                      f"({len(sample):,} galaxies, load {os.getloadavg()[0]:.1f})", flush=True)


def main() -> None:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="head-refresh-bench-"))
    os.environ.update({"VAR_DIR": str(workdir / "var"), "MEDIA_ROOT": str(workdir / "media"),
                       "RETRAIN_AFTER_CLASSIFICATIONS": "0", "HEAD_REFRESH_AFTER_CLASSIFICATIONS": "0",
                       "DJANGO_SETTINGS_MODULE": "config.settings"})
    os.environ.setdefault("SECRET_KEY", "head-refresh-benchmark-only-" + "x" * 40)  # DEBUG stays off
    if args.precise_top is not None:
        os.environ["HEAD_REFRESH_PRECISE_TOP"] = str(args.precise_top)
    if args.coverage_labels is not None:
        os.environ["QUEUE_COVERAGE_LABELS"] = str(args.coverage_labels)
    if args.acquisition is not None:
        os.environ["QUEUE_ACQUISITION"] = args.acquisition
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    build_catalogue(args)
    print(f"catalogue: {args.galaxies:,} galaxies ({args.labelled:,} with {args.votes} votes), {DIM}-d float16 "
          f"embeddings ({2 * DIM} B each) in {connection.vendor}, built in {time.perf_counter() - started:.0f} s; "
          f"tree BALD for the top {settings.HEAD_REFRESH_PRECISE_TOP or 'all'} of the one-vote BALD screen, "
          f"{settings.HEAD_REFRESH_THREADS} scoring thread(s)",
          flush=True)
    print(f"queue rule: {settings.QUEUE_ACQUISITION}, TypiClust start below {settings.QUEUE_COVERAGE_LABELS} "
          f"voted galaxies", flush=True)
    print(f"{'refresh':<9}{'load':>8}{'train':>8}{'score':>9}{'queue':>8}{'gate':>8}{'write':>8}{'prune':>8}{'total':>9}"
          f"{'(CPU s)':>9}"
          f"{'rescored':>10}{'holdout RMSE':>14}   write = rows + insert + activate   DB CPU s   load average")
    for refresh in range(1, args.refreshes + 1):
        t = time_refresh()
        print(f"{refresh:<9}{t['load']:>7.1f}s{t['train']:>7.1f}s{t['score']:>8.1f}s{t['queue']:>7.1f}s"
              f"{t['gate']:>7.1f}s{t['write']:>7.1f}s"
              f"{t['prune_old_heads']:>7.1f}s{t['total']:>8.1f}s{t['cpu']:>9.0f}{t['predictions']:>10,}"
              f"{t['holdout_rmse']:>14.4f}   {t['write_rows']:.1f} + {t['write_insert']:.1f} + "
              f"{t['write_activate']:.1f} s   {t['db_cpu']:8.1f}   {os.getloadavg()[0]:.1f}", flush=True)
    if args.skip_throughput:
        return
    print("MC inference throughput of the head path (embeddings already stored):")
    throughput(args)
    print(f"torch threads: {__import__('torch').get_num_threads()} on {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}; goal: votes→priorities ≤ 60 s for 100k galaxies, ≥ 1,000 galaxies/s")


if __name__ == "__main__":
    main()
