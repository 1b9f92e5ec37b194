#!/usr/bin/env python
"""Workbench reads at catalogue scale on PostgreSQL: cone search (1 arcmin, 1 degree) and the
review queue's first page for each sort and a few filters, as latency percentiles.

    python tests/benchmarks/workbench_benchmark.py                   # 1M galaxies (minutes to build)
    python tests/benchmarks/workbench_benchmark.py --galaxies 100000
    python tests/benchmarks/workbench_benchmark.py --reuse           # keep the database built before

Builds its own database (``galaxy_h_bench`` unless ``--database-url`` says otherwise): galaxies
uniform on the sphere (HEALPix pixels computed as the model does), vote tallies, one active
model version with a prediction per galaxy (per-question Dirichlet draws) and its review
scores (timed: that is the refresh a worker runs on activation). Latency is measured in-process
through the same parse + selector the API calls (no HTTP, no serialisation), one client, on
whatever machine runs it (the reference machine: 2 shared cores). Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "platform", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

WORKFLOW = "gz-decals-dr5"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/galaxy_h_bench")
    parser.add_argument("--galaxies", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--repeats", type=int, default=200, help="queries per figure")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def setup_django(database_url: str) -> None:
    import psycopg

    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _copy(cursor, table: str, columns: list[str], rows: io.StringIO) -> None:
    rows.seek(0)
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        while chunk := rows.read(1 << 20):
            copy.write(chunk)


def build(n: int, *, seed: int, reuse: bool, log=print) -> None:
    """Fill the database with ``n`` galaxies, their tallies, predictions and review scores."""
    from django.db import connection

    from classifications.models import SubjectStatus
    from galaxies.models import Galaxy
    from galaxies.sky import healpix_pixels
    from retraining.models import ModelVersion, Prediction
    from review.models import IntervalExtreme, ReviewScore
    from review.services import refresh_review_scores
    from workflows.models import Workflow

    workflow = Workflow.objects.get(slug=WORKFLOW)
    version = ModelVersion.objects.filter(workflow=workflow, is_active=True).first()
    if reuse and version and Galaxy.objects.count() == n and ReviewScore.objects.filter(model_version=version).count() == n:
        log(f"reusing {n} galaxies")
        return
    rng = np.random.default_rng(seed)
    tree = workflow.decision_tree
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Galaxy._meta.db_table} RESTART IDENTITY CASCADE")
    ModelVersion.objects.filter(workflow=workflow).delete()
    step = 100_000
    status_table, galaxy_table, prediction_table = (SubjectStatus._meta.db_table, Galaxy._meta.db_table,
                                                    Prediction._meta.db_table)
    # The previous version predicted every fifth galaxy (the ones ``sort=changed`` can rank).
    previous, version = (ModelVersion.objects.create(
        workflow=workflow, number=number, checkpoint="models/bench.pt", checkpoint_sha256="0" * 64,
        tree_hash=workflow.tree_hash, answer_columns=list(tree.answer_columns), predictions_complete=True,
        is_active=number == 2) for number in (1, 2))
    slices = []
    start = 0
    for question in tree.questions:
        slices.append((start, start + len(question.answers)))
        start += len(question.answers)
    columns = list(tree.answer_columns)
    for first in range(0, n, step):
        size = min(step, n - first)
        ra = rng.uniform(0, 360, size)
        dec = np.degrees(np.arcsin(rng.uniform(-1, 1, size)))
        pixels = healpix_pixels(ra, dec)
        rows = io.StringIO()
        for i in range(size):
            gid = first + i + 1
            rows.write(f"{gid}\tB{gid:07d}\t{ra[i]:.6f}\t{dec[i]:.6f}\t{'north' if gid % 3 else 'south'}\t"
                       f"galaxies/bench.png\t\t{{}}\tf\t2026-01-01 00:00:00+00\t{pixels[i]}\n")
        fractions = np.empty((size, len(columns)))
        for a, b in slices:
            fractions[:, a:b] = rng.dirichlet(np.ones(b - a), size)
        width = rng.uniform(0.05, 0.5, (size, 1))
        lower, upper = np.clip(fractions - width / 2, 0, 1), np.clip(fractions + width / 2, 0, 1)
        acquisition, entropy = rng.gamma(2.0, 0.05, size), rng.uniform(0.5, 8.0, size)
        votes = rng.integers(0, 40, size)
        smooth = (fractions[:, 0] * votes).round().astype(int)
        predictions = io.StringIO()
        statuses = io.StringIO()
        for i in range(size):
            gid = first + i + 1
            predictions.write(f"{version.pk}\t{gid}\t{json.dumps(np.round(fractions[i], 4).tolist())}\t"
                              f"{json.dumps(np.round(lower[i], 4).tolist())}\t{json.dumps(np.round(upper[i], 4).tolist())}\t"
                              f"{acquisition[i]:.6f}\t{entropy[i]:.6f}\t2026-01-01 00:00:00+00\n")
            if gid % 5 == 0:
                shifted = np.clip(fractions[i] + rng.normal(0, 0.05, len(columns)), 0, 1)
                predictions.write(f"{previous.pk}\t{gid}\t{json.dumps(np.round(shifted, 4).tolist())}\t"
                                  f"{json.dumps(np.round(lower[i], 4).tolist())}\t"
                                  f"{json.dumps(np.round(upper[i], 4).tolist())}\t"
                                  f"{acquisition[i]:.6f}\t{entropy[i]:.6f}\t2026-01-01 00:00:00+00\n")
            counts = {"smooth-or-featured_smooth": int(smooth[i]),
                      "smooth-or-featured_featured-or-disk": int(votes[i] - smooth[i])}
            statuses.write(f"{workflow.pk}\t{gid}\t{json.dumps(counts)}\t{votes[i]}\t\\N\t\t{acquisition[i]:.6f}\t"
                           f"{rng.random():.6f}\t{rng.random():.6f}\t2026-01-01 00:00:00+00\n")
        with connection.cursor() as cursor:
            raw = cursor.cursor
            _copy(raw, galaxy_table, ["id", "id_str", "ra", "dec", "survey", "image", "fits_source", "metadata",
                                      "is_simulated", "created_at", "healpix"], rows)
            _copy(raw, status_table, ["workflow_id", "galaxy_id", "vote_counts", "classification_count", "retired_at",
                                      "retirement_reason", "priority", "random_key", "draw_key", "updated_at"], statuses)
            _copy(raw, prediction_table, ["model_version_id", "galaxy_id", "fractions", "lower", "upper", "acquisition",
                                          "entropy", "created_at"], predictions)
        log(f"  loaded {first + size}/{n} galaxies ({time.perf_counter() - started:.0f} s)")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{galaxy_table}', 'id'), {n})")
        cursor.execute("ANALYZE")
    started = time.perf_counter()
    written = refresh_review_scores(model_version_id=version.pk)
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    log(f"review-score refresh: {written} galaxies in {seconds:.1f} s ({written / seconds:,.0f} galaxies/s)"
        f"   load average {load_average()}")
    with connection.cursor() as cursor:
        for model in (Galaxy, SubjectStatus, Prediction, ReviewScore, IntervalExtreme):
            table = model._meta.db_table
            cursor.execute("SELECT pg_table_size(%s), pg_indexes_size(%s), (SELECT count(*) FROM "
                           f"{table})", [table, table])
            heap, indexes, count = cursor.fetchone()
            log(f"  {table:<32} {count:>10,} rows  table {heap / 2**20:8.1f} MiB  indexes {indexes / 2**20:8.1f} MiB")
        cursor.execute("SELECT pg_relation_size('subject_vote_count')")
        log(f"  index subject_vote_count {cursor.fetchone()[0] / 2**20:.1f} MiB")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   max {ms[-1]:7.2f} ms"


def measure(args) -> None:
    from django.http import QueryDict

    from galaxies.selectors import cone_search
    from review.params import parse_queue_query
    from review.selectors import review_queue
    from workflows.models import Workflow

    rng = np.random.default_rng(args.seed + 1)
    print(f"\n{args.galaxies:,} galaxies, {args.repeats} queries per row, one client\n")
    for label, radius in (("cone 1 arcmin", 1 / 60), ("cone 1 degree", 1.0)):
        times, found = [], []
        for _ in range(args.repeats):
            ra, dec = rng.uniform(0, 360), float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
            started = time.perf_counter()
            found.append(len(cone_search(ra=ra, dec=dec, radius_deg=radius)))
            times.append(time.perf_counter() - started)
        print(f"{label:<56} {percentiles(times)}   (mean {np.mean(found):.1f} galaxies)   load {load_average()}")
    workflow = Workflow.objects.get(slug=WORKFLOW)
    shapes = {
        "queue: sort=bald": "sort=bald",
        "queue: sort=entropy": "sort=entropy",
        "queue: sort=disagreement": "sort=disagreement",
        "queue: sort=votes": "sort=votes",
        "queue: sort=bald&min=bar_strong:0.5": "sort=bald&min=bar_strong:0.5",
        "queue: sort=bald&survey=south&expert=unlabelled": "sort=bald&survey=south&expert=unlabelled",
        "queue: sort=votes&order=asc": "sort=votes&order=asc",
        "queue: sort=changed": "sort=changed",
        "queue: sort=width&answer=bar_strong": "sort=width&answer=bar_strong",
        "queue: sort=width&answer=bar_strong&order=asc": "sort=width&answer=bar_strong&order=asc",
        "queue: sort=width&answer=bar_strong, page 100": "sort=width&answer=bar_strong&page=100",
        "queue: sort=width&answer=bar_strong&min=bar_strong:0.5": "sort=width&answer=bar_strong&min=bar_strong:0.5",
        "queue: sort=votes&survey=south": "sort=votes&survey=south",
        "queue: 1-degree cone, sort=bald": None,
    }
    for label, query in shapes.items():
        times = []
        for _ in range(max(10, args.repeats // 4)):
            if query is None:
                ra, dec = rng.uniform(0, 360), float(np.degrees(np.arcsin(rng.uniform(-1, 1))))
                query_string = f"sort=bald&ra={ra:.4f}&dec={dec:.4f}&radius=1"
            else:
                query_string = query
            started = time.perf_counter()
            parsed, _ = parse_queue_query(QueryDict(query_string))
            review_queue(workflow=workflow, query=parsed)
            times.append(time.perf_counter() - started)
        print(f"{label:<56} {percentiles(times)}   load {load_average()}")


def main() -> None:
    args = parse_args()
    setup_django(args.database_url)
    build(args.galaxies, seed=args.seed, reuse=args.reuse)
    measure(args)


if __name__ == "__main__":
    main()
