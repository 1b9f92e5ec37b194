#!/usr/bin/env python
"""PostgreSQL bytes per galaxy and per classification, for docs/operations.md's capacity
table: builds a database with api_benchmark's SQL generator (DECaLS tree walks as annotations,
status rows in every workflow, indexes rebuilt, VACUUM ANALYZE) and prints
pg_total_relation_size per table split into heap, TOAST and indexes, per row.

    python tests/benchmarks/storage_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/galaxy_bench \
        --galaxies 100000 --classifications 1000000 [--reuse]

Generated classifications have no user agent and no started_at (the web UI sends both: add
roughly the user-agent length, ~100-150 bytes, per row). Nothing asserts on the figures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "platform", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.benchmarks import api_benchmark  # noqa: E402

TABLES = ("galaxies_galaxy", "classifications_subjectstatus", "classifications_classification",
          "retraining_prediction")


def add_predictions(url: str, answers: int) -> None:
    """One model version's catalogue prediction (as predict_chunk writes it: three float arrays
    of one value per answer, BALD and entropy) for every galaxy, if none is stored yet."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM retraining_prediction").fetchone()[0]:
            return
        workflow = conn.execute("SELECT id, tree_hash FROM workflows_workflow WHERE slug = %s",
                                [api_benchmark.WORKFLOW]).fetchone()
        conn.execute("DELETE FROM retraining_modelversion WHERE checkpoint = 'models/bench.pt'")
        version = conn.execute(
            "INSERT INTO retraining_modelversion (workflow_id, number, checkpoint, checkpoint_sha256, checkpoint_bytes, "
            "tree_hash, answer_columns, metrics, train_metrics, predictions_complete, is_active, created_at) "
            "VALUES (%s, 1, 'models/bench.pt', '', 0, %s, '[]', '{}', '{}', true, false, now()) RETURNING id",
            [workflow[0], workflow[1]]).fetchone()[0]
        api_benchmark.timed(conn, "predictions", """
            INSERT INTO retraining_prediction (model_version_id, galaxy_id, fractions, lower, upper, acquisition,
                                               entropy, created_at)
            SELECT %s, g.id, a.f, a.f, a.f, random(), random(), now() FROM galaxies_galaxy g
            CROSS JOIN LATERAL (SELECT jsonb_agg(random()) AS f FROM generate_series(1, %s) WHERE g.id > 0) a""",
                            [version, answers])
        conn.execute("VACUUM ANALYZE retraining_prediction")


def sizes(url: str) -> list[tuple[str, int, int, int, int, int]]:
    """(table, rows, heap, toast, indexes, total) in bytes."""
    import psycopg

    rows = []
    with psycopg.connect(url) as conn:
        for table in TABLES:
            count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            heap, toast, indexes, total = conn.execute(
                "SELECT pg_relation_size(c.oid), coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0), "
                "pg_indexes_size(c.oid), pg_total_relation_size(c.oid) FROM pg_class c WHERE c.oid = %s::regclass",
                [table]).fetchone()
            rows.append((table, count, heap, toast, indexes, total))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/galaxy_bench")
    parser.add_argument("--galaxies", type=int, default=100_000)
    parser.add_argument("--classifications", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    tree = api_benchmark.DecisionTree.load("decals_dr5")
    wanted = {"galaxies": args.galaxies, "classifications": args.classifications}
    if not (args.reuse and api_benchmark.database_state(args.database_url) == wanted):
        api_benchmark.build(argparse.Namespace(database_url=args.database_url, galaxies=args.galaxies,
                                               classifications=args.classifications), tree)
    add_predictions(args.database_url, answers=len(tree.answer_columns))
    import psycopg

    with psycopg.connect(args.database_url) as conn:
        workflows = conn.execute("SELECT count(*) FROM workflows_workflow").fetchone()[0]
        database = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    api_benchmark.section("bytes per row (heap + TOAST + indexes)")
    print(f"  {'table':<32} {'rows':>11} {'heap B/row':>10} {'toast':>6} {'index B/row':>11} {'total B/row':>11}")
    per_row = {}
    for table, count, heap, toast, indexes, total in sizes(args.database_url):
        if count:
            per_row[table] = total / count
            print(f"  {table:<32} {count:>11,} {heap / count:>10.0f} {toast / count:>6.0f} {indexes / count:>11.0f} "
                  f"{total / count:>11.0f}")
    galaxy = per_row["galaxies_galaxy"] + workflows * per_row["classifications_subjectstatus"]
    classification = per_row["classifications_classification"]
    prediction = per_row.get("retraining_prediction", 0.0)
    print(f"\n  per galaxy (galaxy row + {workflows} status rows): {galaxy:.0f} B -> {galaxy:.0f} MB per million")
    print(f"  per classification: {classification:.0f} B -> {classification:.0f} MB per million")
    print(f"  per prediction (one galaxy, one model version): {prediction:.0f} B -> {prediction:.0f} MB per million")
    print(f"  database: {database / 1e9:.2f} GB")
    api_benchmark.section("extrapolated (linear; 40 classifications per galaxy, 2 model versions' predictions kept)")
    for galaxies in (10**6, 10**8, 10**10):
        votes = 40 * galaxies
        total = galaxies * (galaxy + 2 * prediction) + votes * classification
        print(f"  {galaxies:>14,} galaxies, {votes:>16,} classifications: {total / 1e12:10.3f} TB")


if __name__ == "__main__":
    main()
