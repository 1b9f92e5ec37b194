#!/usr/bin/env python
"""Classifications API at catalogue scale on PostgreSQL: next-subject and submit latency,
and sustained classifications per second through a real gunicorn server.

    python tests/benchmarks/api_benchmark.py                      # 1M galaxies, 10M classifications
    python tests/benchmarks/api_benchmark.py --galaxies 100000 --classifications 1000000
    python tests/benchmarks/api_benchmark.py --reuse              # keep the generated database

It builds its own database (``galaxy_bench`` unless ``--database-url`` says otherwise),
migrates it and fills it with SQL (generate_series, indexes rebuilt after the load), so a
full-scale build takes minutes, not hours. Volunteers: 200 veterans with ~8,000
classifications each, ~C/8 casual volunteers, one "power" volunteer who has classified the
top of the priority queue (the anti-join's worst case), and new volunteers with no history.
A galaxy's tally is the sum of its generated classifications; 20% of the galaxies are retired.

Figures are medians/percentiles over many requests on whatever machine runs it (the
reference machine has 2 shared cores running PostgreSQL, gunicorn and the load clients
together); not a test, nothing asserts on them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "platform", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from classifier.tree import DecisionTree  # noqa: E402
from workflows.shipped import DECALS_DR5  # noqa: E402

WORKFLOW = DECALS_DR5
N_VETERANS = 200
N_PATHS = 64
RETIREMENT_COUNT = 40


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/galaxy_bench")
    parser.add_argument("--galaxies", type=int, default=1_000_000)
    parser.add_argument("--classifications", type=int, default=10_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep an existing database built at the same scale")
    parser.add_argument("--next-requests", type=int, default=2000, help="next-subject requests per measurement")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (one per core did best)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent load-generating client processes")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of sustained load")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--batch", type=int, default=10,
                        help="classifications per request in the batch-submit workload (1 skips it)")
    parser.add_argument("--skip-load", action="store_true", help="only build the data and measure next-subject")
    parser.add_argument("--cache-url", default=os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1"),
                        help="the server's shared cache (request rates), Redis as in production")
    parser.add_argument("--next-rate", type=float, default=1000.0,
                        help="offered next-subject requests/s of the paced workload (0 skips it)")
    parser.add_argument("--protections", action="store_true",
                        help="also run single submits with the issue-15 protections off, and with DRF's throttles")
    parser.add_argument("--early-retirement", choices=["off", "on", "both"], default="off",
                        help="the workflow's early_retirement (the consensus check on every counted vote); "
                             "'both' runs each submit workload with it off and on, alternating")
    parser.add_argument("--retirement-rounds", type=int, default=2, help="off/on pairs per workload with 'both' (in the order off, on, on, off, ...)")
    parser.add_argument("--votes", choices=["random", "decals"], default="random",
                        help="what volunteers answer: uniformly random paths, or real GZ DECaLS volunteers "
                             "(each galaxy's votes drawn from a real galaxy's rebuilt stream, ../shared data), "
                             "so that tallies split and settle as real ones do (the retirement check's cost)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--max-requests", type=int, default=0,
                        help="gunicorn recycles a worker after this many requests (deploy/: 5,000; 0: never)")
    return parser.parse_args()


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return float("nan"), float("nan"), float("nan")
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return statistics.median(ordered), p99, statistics.fmean(ordered)



# --------------------------------------------------------------------------- database build
def admin_connection(url: str):
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(url)
    return psycopg.connect(**{**info, "dbname": "postgres"}, autocommit=True), info["dbname"]


def database_state(url: str) -> dict | None:
    """The scale recorded by a previous build, or None when there is no complete build."""
    import psycopg

    admin, name = admin_connection(url)
    with admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return None
    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT to_regclass('bench_meta')").fetchone()[0]:
            return None
        row = conn.execute("SELECT * FROM bench_meta").fetchone()  # builds before --votes have no third column
        return {"galaxies": row[0], "classifications": row[1], "votes": row[2] if len(row) > 2 else "random"} if row else None


def recreate_database(url: str) -> None:
    admin, name = admin_connection(url)
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def timed(conn, label: str, sql: str, params=None) -> None:
    start = time.perf_counter()
    cur = conn.execute(sql, params)
    rows = f", {cur.rowcount:,} rows" if cur.rowcount and cur.rowcount > 0 else ""
    print(f"  {label}: {time.perf_counter() - start:.1f} s{rows}", flush=True)


def drop_secondary_indexes(conn, tables: list[str]) -> list[str]:
    """Drop unique/foreign-key constraints and indexes (not primary keys) so the bulk load
    does not maintain them row by row; returns the statements that recreate them."""
    restore = []
    for table in tables:
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('u', 'f')", [table]).fetchall()
        names = {name for name, _, _ in constraints}
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i JOIN pg_index x ON x.indexrelid = "
            "(quote_ident(i.indexname))::regclass WHERE i.tablename = %s AND NOT x.indisprimary",
            [table]).fetchall()
        for name, _definition, _contype in sorted(constraints, key=lambda c: c[2] != "f"):
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, definition in indexes:
            if name not in names:
                conn.execute(f'DROP INDEX "{name}"')
                restore.append(definition)
        for name, definition, _contype in sorted(constraints, key=lambda c: c[2] == "f"):
            restore.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    return restore


def real_walks(data: Path, tree: DecisionTree) -> list[list[list[dict]]]:
    """Per real GZ DECaLS galaxy, its volunteers' paths, rebuilt from the published counts
    (``retirement_benchmark.rebuild_streams``, seed 0); a path the counts leave unfinished goes
    on by the galaxy's majority answers."""
    import numpy as np

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import retirement_benchmark

    counts_file = data / "gz_decals_votes" / "full_tree_counts.csv"
    if not counts_file.is_file():
        raise SystemExit(f"--votes decals needs {counts_file} (../shared data)")
    votes = retirement_benchmark.load_decals(counts_file)
    cumulative, volunteers, _ = retirement_benchmark.rebuild_streams(votes, np.random.default_rng(0))
    out = []
    for g, n in enumerate(volunteers):
        paths = []
        for row in np.diff(cumulative[g, :n + 1], axis=0):
            path, question = [], tree.question(tree.first)
            while question is not None:
                given = [a for a in question.answers if row[a.index]]
                answer = given[0] if given else max(question.answers, key=lambda a: votes.counts[g, a.index])
                path.append({"question": question.key, "answer": answer.key})
                question = tree.question(answer.next) if answer.next else None
            paths.append(path)
        if paths:
            out.append(paths)
    return out


def real_streams(walks: list[list[list[dict]]], counts: list[tuple[int, int]]) -> tuple[list[list[dict]], list[tuple]]:
    """Distinct paths, and ``(g, k, path id)`` for the first ``n`` classifications of each
    ``(g, n)``: galaxy g votes as real galaxy ``(g − 1) mod len(walks)`` (the clients' rule), its
    volunteers in a random order, then drawn again at random past their number."""
    ids: dict[str, int] = {}
    paths: list[list[dict]] = []
    stream = []
    for g, n in counts:
        rng = random.Random(g)
        real = walks[(g - 1) % len(walks)]
        order = rng.sample(real, len(real)) + [rng.choice(real) for _ in range(max(0, n - len(real)))]
        for k, path in enumerate(order[:n], start=1):
            key = json.dumps(path)
            if key not in ids:
                ids[key] = len(paths)
                paths.append(path)
            stream.append((g, k, ids[key]))
    return paths, stream


def build(args: argparse.Namespace, tree: DecisionTree) -> None:
    import psycopg
    from django.core.management import call_command

    section(f"building {args.galaxies:,} galaxies / ~{args.classifications:,} classifications in a fresh database")
    recreate_database(args.database_url)
    call_command("migrate", verbosity=0)
    G, C = args.galaxies, args.classifications
    retired = max(1, int(0.8 * C / RETIREMENT_COUNT)) if C >= RETIREMENT_COUNT * 5 else 0
    retired = min(retired, G // 2)
    step = G // retired if retired else G + 1
    # Unretired galaxies share the remaining classifications: n uniform in [0, span).
    rest = max(0, C - RETIREMENT_COUNT * (G // step))
    span = max(1, min(RETIREMENT_COUNT - 1, int(round(2 * rest / max(1, G - G // step))) + 1))
    n_casual = max(1000, C // 8)
    n_power = min(20_000, G // 20)
    rng = random.Random(7)
    paths = [tree.random_path(rng) for _ in range(N_PATHS)]
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET work_mem = '256MB'")
        workflows = dict(conn.execute("SELECT slug, id FROM workflows_workflow").fetchall())
        wf = workflows[WORKFLOW]
        conn.execute("UPDATE workflows_workflow SET retirement_count = %s", [RETIREMENT_COUNT])
        tables = ["galaxies_galaxy", "classifications_subjectstatus", "classifications_classification"]
        restore = drop_secondary_indexes(conn, tables)
        timed(conn, "galaxies", """
            INSERT INTO galaxies_galaxy (id, id_str, ra, dec, survey, pixel_scale, image, fits_source, metadata,
                                         is_simulated, created_at)
            SELECT g, 'BENCH' || lpad(g::text, 8, '0'), (g * 0.0003597) %% 360, (g::bigint * 7919 %% 1800000) / 10000.0 - 90,
                   'bench', 0.262, 'galaxies/bench-placeholder.jpg', '', '{}', true, now()
            FROM generate_series(1, %s) g""", [G])
        conn.execute("SELECT setval(pg_get_serial_sequence('galaxies_galaxy', 'id'), %s)", [G])
        conn.execute("CREATE UNLOGGED TABLE bench_counts AS SELECT g, CASE WHEN g %% %s = 0 THEN %s "
                     "ELSE floor(((g * 0.6180339887) %% 1) * %s)::int END AS n FROM generate_series(1, %s) g",
                     [step, RETIREMENT_COUNT, span, G])
        conn.execute("CREATE UNLOGGED TABLE bench_paths (pid int PRIMARY KEY, annotations jsonb, cols text[])")
        # bench_stream: the path of the k-th classification of galaxy g.
        conn.execute("CREATE UNLOGGED TABLE bench_stream (g int, k int, pid int, PRIMARY KEY (g, k))")
        if args.votes == "random":
            conn.execute(f"""INSERT INTO bench_stream SELECT c.g, k, (c.g * 31 + k) %% {N_PATHS}
                             FROM bench_counts c CROSS JOIN LATERAL generate_series(1, c.n) k""")
        else:
            counts = conn.execute("SELECT g, n FROM bench_counts").fetchall()
            paths, stream = real_streams(real_walks(args.data, tree), counts)
            with conn.cursor() as cur, cur.copy("COPY bench_stream (g, k, pid) FROM STDIN") as copy:
                for row in stream:
                    copy.write_row(row)
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO bench_paths VALUES (%s, %s, %s)",
                            [(i, json.dumps(p), [f"{a['question']}_{a['answer']}" for a in p])
                             for i, p in enumerate(paths)])
        # The k-th classification of galaxy g: k = 1, 2 by veterans, the rest by casual volunteers,
        # never the same volunteer twice on one galaxy (k < 50).
        volunteer = (f"CASE WHEN c.k = 1 THEN 'anon:vet' || (c.g %% {N_VETERANS}) "
                     f"WHEN c.k = 2 THEN 'anon:vet' || ((c.g + {N_VETERANS // 2}) %% {N_VETERANS}) "
                     f"ELSE 'anon:casual' || ((c.g * 50 + c.k) %% {n_casual}) END")
        timed(conn, "classifications", f"""
            INSERT INTO classifications_classification (workflow_id, workflow_version, galaxy_id, user_id,
                volunteer_key, annotations, idempotency_key, counted, selection, is_simulated, is_favourite,
                started_at, finished_at, created_at, user_agent)
            SELECT %s, 1, c.g, NULL, {volunteer}, p.annotations, 'bench-' || c.g || '-' || c.k, true, 'priority',
                   true, false, NULL, t, t, ''
            FROM bench_stream c JOIN bench_paths p ON p.pid = c.pid
            CROSS JOIN LATERAL (SELECT now() - ((c.g * 37 + c.k * 101) %% 31536000) * interval '1 second' AS t) ts
            """, [wf])
        timed(conn, "tallies", """
            CREATE UNLOGGED TABLE bench_votes AS
            SELECT g, jsonb_object_agg(col, n) AS counts FROM (
                SELECT x.g, col, count(*)::int AS n
                FROM bench_stream x JOIN bench_paths p ON p.pid = x.pid CROSS JOIN LATERAL unnest(p.cols) col
                GROUP BY x.g, col) v
            GROUP BY g""", [])
        timed(conn, "statuses", """
            INSERT INTO classifications_subjectstatus (workflow_id, galaxy_id, vote_counts, classification_count,
                retired_at, retirement_reason, priority, random_key, draw_key, updated_at)
            SELECT w.id, c.g, CASE WHEN w.id = %s THEN coalesce(v.counts, '{}') ELSE '{}' END,
                   CASE WHEN w.id = %s THEN c.n ELSE 0 END,
                   CASE WHEN w.id = %s AND c.n >= %s THEN now() END,
                   CASE WHEN w.id = %s AND c.n >= %s THEN 'classification_count' ELSE '' END,
                   random(), random(), random(), now()
            FROM bench_counts c CROSS JOIN workflows_workflow w LEFT JOIN bench_votes v ON v.g = c.g""",
               [wf, wf, wf, RETIREMENT_COUNT, wf, RETIREMENT_COUNT])
        # The power volunteer has classified the top of the queue: the next-subject query must skip it all.
        power_path = paths[0]
        cols = [f"{a['question']}_{a['answer']}" for a in power_path]
        bump = " || ".join(f"jsonb_build_object('{c}', coalesce((vote_counts->>'{c}')::int, 0) + 1)" for c in cols)
        conn.execute("""CREATE UNLOGGED TABLE bench_power AS SELECT galaxy_id FROM classifications_subjectstatus
                         WHERE workflow_id = %s AND retired_at IS NULL ORDER BY priority DESC LIMIT %s""",
                     [wf, n_power])
        timed(conn, "power volunteer", """
            INSERT INTO classifications_classification (workflow_id, workflow_version, galaxy_id, volunteer_key,
                annotations, idempotency_key, counted, selection, is_simulated, is_favourite, finished_at, created_at,
                user_agent)
            SELECT %s, 1, galaxy_id, 'anon:power', %s, 'bench-power-' || galaxy_id, true, 'priority', true, false,
                   now(), now(), '' FROM bench_power""", [wf, json.dumps(power_path)])
        conn.execute(f"""UPDATE classifications_subjectstatus s SET classification_count = classification_count + 1,
                         vote_counts = vote_counts || {bump} FROM bench_power p
                         WHERE s.workflow_id = %s AND s.galaxy_id = p.galaxy_id""", [wf])
        start = time.perf_counter()
        for statement in restore:
            conn.execute(statement)
        print(f"  indexes and constraints ({len(restore)}): {time.perf_counter() - start:.1f} s", flush=True)
        for table in ("bench_counts", "bench_paths", "bench_stream", "bench_votes", "bench_power"):
            conn.execute(f"DROP TABLE {table}")
        for table in tables:
            timed(conn, f"vacuum analyze {table}", f"VACUUM ANALYZE {table}")
        total = conn.execute("SELECT count(*) FROM classifications_classification").fetchone()[0]
        conn.execute("CREATE TABLE bench_meta (galaxies int, classifications bigint, votes text)")
        conn.execute("INSERT INTO bench_meta VALUES (%s, %s, %s)", [G, C, args.votes])
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        print(f"  built: {total:,} classifications, database size {size}", flush=True)


# --------------------------------------------------------------------------- measurements
def volunteer_sessions(n_new: int) -> dict[str, list[str]]:
    """Identity cookies for each kind of volunteer (anonymous identities, as the web UI gets
    from POST /api/volunteers/anonymous/), signed with the server's key."""
    from classifications.volunteers import token_for as session

    return {"veteran": [session(f"vet{i}") for i in range(N_VETERANS)],
            "power": [session("power")],
            "new": [session(uuid.uuid4().hex) for _ in range(n_new)]}


def explain_next(workflow, volunteer_key: str) -> str:
    """The plan of the statement next_subjects() sends for a random share of 2 out of 10."""
    from django.db import connection

    from classifications import selectors

    captured = []
    with connection.execute_wrapper(lambda execute, sql, params, many, context: captured.append((sql, params))
                                    or execute(sql, params, many, context)):
        for seed in range(100):  # a seed whose draw takes two random picks
            rng = random.Random(seed)
            if sum(rng.random() < 0.2 for _ in range(10)) == 2:
                break
        captured.clear()
        selectors.next_subjects(workflow=workflow, volunteer_key=volunteer_key, limit=10, random_fraction=0.2,
                                rng=random.Random(seed))
    sql, params = captured[0]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return "\n".join("    " + row[0] for row in cursor.fetchall())


def measure_selector(workflow, n_requests: int) -> list[tuple[str, float, float, float]]:
    from classifications.selectors import next_subjects

    rng = random.Random(3)
    kinds = {"veteran": lambda: f"anon:vet{rng.randrange(N_VETERANS)}", "power": lambda: "anon:power",
             "new": lambda: f"anon:{uuid.uuid4().hex}"}
    rows = []
    for kind, volunteer in kinds.items():
        n = n_requests if kind != "power" else max(50, n_requests // 10)
        timings = []
        for _ in range(n):
            key = volunteer()
            start = time.perf_counter()
            items = next_subjects(workflow=workflow, volunteer_key=key, limit=10, rng=rng)
            timings.append((time.perf_counter() - start) * 1000)
            assert len(items) == 10, (kind, len(items))
        rows.append((kind, n, *percentiles(timings)))
    return rows


# The benchmark's own throwaway server: production settings except the key, plain http and the rates.
BENCHMARK_SECRET_KEY = "benchmark-only-not-a-secret-7d2a9f4c1e8b6053a7c9e1f4b2d8a6c0"


# Settings variants for --protections, as a settings module of their own (no production switch).
VARIANTS = {
    "protections on": None,
    "protections off": """from config.settings import *  # noqa
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": []}
MIDDLEWARE = [m for m in MIDDLEWARE if m not in ("axes.middleware.AxesMiddleware", "core.middleware.CSPMiddleware",
                                                 "core.middleware.ApiGuardMiddleware")]
""",
    "DRF's throttle (one counter)": """from config.settings import *  # noqa
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"]}
""",
}


def start_server(args: argparse.Namespace, variant: str | None = None) -> subprocess.Popen:
    # Connections kept for the whole run, so the CPU readings see every PostgreSQL backend.
    env = {**os.environ, "DATABASE_URL": args.database_url, "DEBUG": "false", "LOG_LEVEL": "WARNING",
           "CACHE_URL": args.cache_url,
           "SECRET_KEY": os.environ.get("SECRET_KEY", BENCHMARK_SECRET_KEY), "HTTPS_ONLY": "0",
           # The load generator is a few clients on one address: the per-volunteer and per-address
           # limits stay in (their cost is measured) but set past the rates the run reaches.
           **{f"THROTTLE_{scope}": "10000000/min" for scope in ("SUBMIT", "SUBMIT_IP", "NEXT", "NEXT_IP")},
           "CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "600")}
    pythonpath = "platform"
    if VARIANTS.get(variant):
        folder = Path(os.environ.get("VAR_DIR", ROOT / "var")) / "bench_settings"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bench_variant.py").write_text(VARIANTS[variant])
        pythonpath, env["DJANGO_SETTINGS_MODULE"] = f"platform,{folder}", "bench_variant"
    command = [sys.executable, "-m", "gunicorn", "--pythonpath", pythonpath, "config.wsgi",
               "-b", f"127.0.0.1:{args.port}", "-w", str(args.workers), "-k", "gthread", "--threads",
               str(args.threads), "--log-level", "warning", "--keep-alive", "30"]
    if args.max_requests:
        command += ["--max-requests", str(args.max_requests), "--max-requests-jitter", str(args.max_requests // 10)]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=5)
            conn.request("GET", "/api/workflows/")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not come up")


def client_loop(port: int, cookies: list[str], walks: list[list[dict]], seconds: float, seed: int,
                next_only: bool, batch: int, queue: mp.Queue, interval: float = 0.0) -> None:
    """A volunteer-like client: fetch a batch of next galaxies, classify each, repeat (as a
    volunteer drawn afresh for every batch). With batch > 1 the classifications go `batch` per
    request to the batch endpoint, as a client flushing its outbox does. Records are
    (kind, ms, HTTP status, classifications); each batch item adds a ("batch-item", 0, status, 1).
    With ``interval`` (next only) requests are sent on a fixed schedule, and latency counts from
    the scheduled time, so a slow answer also delays (and counts against) the ones behind it."""
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    records = []
    deadline = time.perf_counter() + seconds
    slot = time.perf_counter() + rng.random() * interval
    while time.perf_counter() < deadline:
        # A volunteer per batch: one volunteer classifying hundreds of galaxies in seconds would
        # measure the queue's skipped-prefix worst case (see the power volunteer), not the API.
        cookie = f"gz_volunteer={rng.choice(cookies)}"
        if interval:
            time.sleep(max(0.0, slot - time.perf_counter()))
            start, slot = slot, slot + interval
        else:
            start = time.perf_counter()
        conn.request("GET", f"/api/workflows/{WORKFLOW}/next/?limit=10", headers={"Cookie": cookie})
        response = conn.getresponse()
        body = response.read()
        records.append(("next", (time.perf_counter() - start) * 1000, response.status, 0))
        if next_only or response.status != 200:
            continue
        votes = [{"workflow": WORKFLOW, "galaxy": item["galaxy"]["id_str"],
                  "annotations": rng.choice(walks[(int(item["galaxy"]["id_str"][5:]) - 1) % len(walks)]),
                  "idempotency_key": uuid.uuid4().hex, "selection": item["selection"]}
                 for item in json.loads(body)["results"]]
        for first in range(0, len(votes), batch):
            chunk = votes[first:first + batch]
            path, payload = (("/api/classifications/", chunk[0]) if batch == 1 else
                             ("/api/classifications/batch/", {"classifications": chunk}))
            start = time.perf_counter()
            conn.request("POST", path, body=json.dumps(payload),
                         headers={"Cookie": cookie, "Content-Type": "application/json"})
            response = conn.getresponse()
            answer = response.read()
            records.append(("submit" if batch == 1 else "batch", (time.perf_counter() - start) * 1000,
                            response.status, len(chunk)))
            if batch > 1 and response.status == 200:
                records += [("batch-item", 0.0, r["status"], 1) for r in json.loads(answer)["results"]]
            if time.perf_counter() >= deadline:
                break
    queue.put((records, time.process_time()))


def run_load(args: argparse.Namespace, cookies: list[str], walks, seconds: float, next_only: bool = False,
             batch: int = 1, rate: float = 0.0):
    queue: mp.Queue = mp.Queue()
    interval = args.clients / rate if rate else 0.0
    ctx_clients = [mp.Process(target=client_loop,
                              args=(args.port, cookies, walks, seconds, seed, next_only, batch, queue, interval))
                   for seed in range(args.clients)]
    start = time.perf_counter()
    for process in ctx_clients:
        process.start()
    records, client_cpu = [], 0.0
    for _ in ctx_clients:
        mine, cpu = queue.get()
        records += mine
        client_cpu += cpu
    for process in ctx_clients:
        process.join()
    return records, time.perf_counter() - start, client_cpu


def summarise_load(records, elapsed: float) -> list[tuple]:
    """Per kind: requests, requests/s, classifications/s, p50, p99 and the status counts."""
    rows = []
    for kind in ("next", "submit", "batch", "batch-item"):
        mine = [r for r in records if r[0] == kind]
        if not mine:
            continue
        ok = [ms for _, ms, code, _ in mine if code in (200, 201)]
        statuses = {}
        for _, _, code, _ in mine:
            statuses[code] = statuses.get(code, 0) + 1
        classified = sum(n for *_, n in mine)
        rows.append((kind, len(mine), len(mine) / elapsed, classified / elapsed, *percentiles(ok)[:2], statuses))
    return rows


def cpu_ticks(server: subprocess.Popen, database: str) -> tuple[dict[int, int], dict[int, int], int]:
    """CPU ticks so far per gunicorn worker and per PostgreSQL backend of this database, and of
    the workers gunicorn has reaped (recycled by --max-requests: the master's children times),
    from /proc: on a shared machine, CPU per request says more than wall-clock rates."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database])
        backends = [row[0] for row in cursor.fetchall()]
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    workers = [int(p) for p in children.read_text().split()] if children.exists() else []

    def stat(pid: int) -> list[str] | None:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None

    def ticks(pids: list[int]) -> dict[int, int]:
        out = {}
        for pid in pids:
            fields = stat(pid)
            if fields:
                out[pid] = int(fields[11]) + int(fields[12])
        return out

    master = stat(server.pid)
    return ticks(workers), ticks(backends), int(master[13]) + int(master[14]) if master else 0


def cpu_used(before: tuple[dict[int, int], dict[int, int], int],
             after: tuple[dict[int, int], dict[int, int], int]) -> tuple[float, float]:
    """Seconds of CPU (gunicorn, PostgreSQL) between two readings. A worker that ended in
    between counts by the master's reaped-children time less its first reading. Backends come and
    go (CONN_MAX_AGE): a process counts from its first reading, and one that ended in between is
    missed, so the PostgreSQL figure is a lower bound — never negative."""
    hz = os.sysconf("SC_CLK_TCK")
    (workers_before, backends_before, reaped_before), (workers_after, backends_after, reaped_after) = before, after
    gone = sum(ticks for pid, ticks in workers_before.items() if pid not in workers_after)
    app = sum(ticks - workers_before.get(pid, 0) for pid, ticks in workers_after.items()) + reaped_after - reaped_before - gone
    db = sum(ticks - backends_before.get(pid, 0) for pid, ticks in backends_after.items())
    return app / hz, db / hz


def check_consistency(since) -> tuple[int, int]:
    """Statuses touched by the load whose tally differs from a recount of their classifications."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT count(*), count(*) FILTER (WHERE s.classification_count <> (
                SELECT count(*) FROM classifications_classification c
                WHERE c.workflow_id = s.workflow_id AND c.galaxy_id = s.galaxy_id AND c.counted))
            FROM classifications_subjectstatus s WHERE s.updated_at >= %s""", [since])
        touched, mismatched = cursor.fetchone()
    return touched, mismatched


def machine_speed() -> str:
    """A fixed pure-Python loop, so figures from a busy shared machine can be scaled: it takes
    about 0.3 s of CPU on an idle modern x86 core."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    total = 0
    for i in range(5_000_000):
        total += i
    return (f"5M-iteration Python loop: {time.process_time() - start_cpu:.2f} s CPU, "
            f"{time.perf_counter() - start_wall:.2f} s wall; load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} cores")


def main() -> None:
    args = parse_args()
    print(machine_speed(), flush=True)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", BENCHMARK_SECRET_KEY)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections
    from psycopg.conninfo import conninfo_to_dict

    from workflows.models import Workflow

    tree = DecisionTree.load("decals_dr5")
    state = database_state(args.database_url)
    wanted = {"galaxies": args.galaxies, "classifications": args.classifications, "votes": args.votes}
    if not (args.reuse and state == wanted):
        build(args, tree)
    else:
        print(f"reusing {args.database_url} ({state['galaxies']:,} galaxies, {state['classifications']:,} classifications, "
              f"{state['votes']} votes)")
        call_command("migrate", verbosity=0)
    connections.close_all()
    workflow = Workflow.objects.get(slug=WORKFLOW)

    section("EXPLAIN ANALYZE of the next-subject priority query")
    for key in ("anon:vet0", "anon:power", "anon:nobody-yet"):
        print(f"  volunteer {key}:\n{explain_next(workflow, key)}")

    section(f"next_subjects() in-process (ORM + SQL, no HTTP), limit=10, random_fraction={workflow.random_fraction}")
    print(f"  {'volunteer':<10} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for kind, n, p50, p99, mean in measure_selector(workflow, args.next_requests):
        print(f"  {kind:<10} {n:>8} {p50:>8.2f} {p99:>8.2f} {mean:>8.2f}")
    if args.skip_load:
        return

    sessions = volunteer_sessions(n_new=max(args.clients * 4, 64))
    connections.close_all()
    walks = ([[tree.random_path(random.Random(seed)) for seed in range(500)]] if args.votes == "random"
             else real_walks(args.data, tree))
    database = conninfo_to_dict(args.database_url)["dbname"]
    mixed = sessions["veteran"] + sessions["new"]
    workloads = [("next only, veterans", sessions["veteran"], True, 1, 0.0),
                 ("next only, new volunteers", sessions["new"], True, 1, 0.0)]
    if args.next_rate:
        workloads.append((f"next paced at {args.next_rate:.0f}/s", mixed, True, 1, args.next_rate))
    workloads.append(("next + submit, mixed", mixed, False, 1, 0.0))
    if args.batch > 1:
        workloads.append((f"next + batch of {args.batch}, mixed", mixed, False, args.batch, 0.0))
    # off, on, on, off, ...: a drift in the machine's load hits both alike.
    toggles = {"off": [False], "on": [True],
               "both": [bool((i + 1) // 2 % 2) for i in range(2 * args.retirement_rounds)]}[args.early_retirement]
    workloads = [(*w, None) for w in workloads if w[2]] + [
        (f"{label}, early retirement {'on' if early else 'off'}", cookies, False, batch, rate, early)
        for label, cookies, next_only, batch, rate in workloads if not next_only for early in toggles]
    runs = [(None, workloads)]
    if args.protections:
        runs += [(variant, [(f"{variant}: next + submit", mixed, False, 1, 0.0, None)]) for variant in VARIANTS
                 if VARIANTS[variant]]
        runs.append(("protections on", [("protections on: next + submit", mixed, False, 1, 0.0, None)]))
    section(f"HTTP via gunicorn ({args.workers} workers x {args.threads} thread, gthread) with "
            f"{args.clients} client processes on the same machine; cache {args.cache_url}")
    print(f"  {'workload':<30} {'kind':<10} {'requests':>8} {'req/s':>8} {'class./s':>8} {'p50 ms':>8} "
          f"{'p99 ms':>8}  statuses")
    for variant, loads in runs:
        server = start_server(args, variant)
        try:
            run_load(args, sessions["new"], walks, 3.0)  # warm-up: imports, connections, caches
            for workload in loads:
                measure(args, server, database, walks, *workload)
        finally:
            server.terminate()
            server.wait(timeout=30)


def measure(args: argparse.Namespace, server: subprocess.Popen, database: str, walks, label: str, cookies,
            next_only: bool, batch: int, rate: float, early: bool | None) -> None:
    from django.db import connections
    from django.utils import timezone

    from classifications.models import SubjectStatus
    from workflows.models import Workflow

    if early is not None:
        Workflow.objects.filter(slug=WORKFLOW).update(early_retirement=early)
        connections.close_all()
    since = timezone.now()
    seconds = args.duration if not next_only else max(5.0, args.duration / 3)
    cpu_before = cpu_ticks(server, database)
    load_before = os.getloadavg()[0]
    records, elapsed, client_cpu = run_load(args, cookies, walks, seconds, next_only=next_only, batch=batch,
                                            rate=rate)
    cpu = cpu_used(cpu_before, cpu_ticks(server, database))
    requests = max(1, sum(1 for r in records if r[0] != "batch-item"))
    app_ms, db_ms = (seconds * 1000 / requests for seconds in cpu)
    for kind, n, req_rate, class_rate, p50, p99, statuses in summarise_load(records, elapsed):
        latency = f"{p50:>8.2f} {p99:>8.2f}" if kind != "batch-item" else f"{'':>8} {'':>8}"
        print(f"  {label:<30} {kind:<10} {n:>8} {req_rate:>8.0f} {class_rate:>8.0f} {latency}  {statuses}",
              flush=True)
    classified = sum(n for kind, _, _, n in records if kind in ("submit", "batch"))
    print(f"  {label:<30} server CPU per request: {app_ms + db_ms:.2f} ms (gunicorn {app_ms:.2f} + "
          f"PostgreSQL {db_ms:.2f}) -> ~{2000 / (app_ms + db_ms):.0f} requests/s if 2 cores were free "
          f"for the server; load clients {client_cpu * 1000 / requests:.2f} ms; load average "
          f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}", flush=True)
    if classified:
        per_vote = sum(cpu) * 1000 / classified
        print(f"  {label:<30} server CPU per stored classification (next requests included): "
              f"{per_vote:.2f} ms", flush=True)
    if not next_only:
        touched, mismatched = check_consistency(since)
        print(f"  consistency after load: {mismatched} of {touched:,} touched galaxies differ from a recount")
        retired = SubjectStatus.objects.filter(updated_at__gte=since, retirement_reason="consensus").count()
        print(f"  {label:<30} retired on consensus during the run: {retired:,} galaxies", flush=True)
        if early:
            checks, micros, full = replay_checks(since)
            print(f"  {label:<30} the run's {checks:,} retirement checks replayed in process (fresh rule, one "
                  f"thread): {micros:.0f} µs CPU per check, {full:.0%} of them full passes", flush=True)


def replay_checks(since) -> tuple[int, float, float]:
    """The retirement checks the run made, again: every counted vote since ``since``, in order,
    on the tally its galaxy had just after it (its final tally less the later votes), timed with
    a fresh rule (cold memo) — the check's own CPU on exactly this workload, which the off/on
    difference of the whole server's CPU measures only within its noise."""
    from classifications.decision import _BLOCKING
    from classifications.models import Classification, SubjectStatus
    from classifier.retirement import RetirementRule
    from workflows.models import Workflow

    workflow = Workflow.objects.get(slug=WORKFLOW)
    tree = workflow.decision_tree
    votes = list(Classification.objects.filter(workflow=workflow, counted=True, created_at__gte=since)
                 .order_by("created_at", "id").values_list("galaxy_id", "annotations"))
    statuses = {s.galaxy_id: s for s in SubjectStatus.objects.filter(
        workflow=workflow, galaxy_id__in={g for g, _ in votes})}
    tallies = {g: (dict(s.vote_counts), s.classification_count) for g, s in statuses.items()}
    checks = []
    for galaxy, path in reversed(votes):
        counts, n = tallies[galaxy]
        checks.append((dict(counts), n))
        for column in tree.path_columns([(a["question"], a["answer"]) for a in path]):
            counts[column] -= 1
        tallies[galaxy] = (counts, n - 1)
    checks.reverse()
    rule = RetirementRule(tree, max_votes=workflow.retirement_count, blocking=_BLOCKING[workflow.retirement_agreement])
    full_passes = []
    change_probabilities = rule.change_probabilities
    rule.change_probabilities = lambda *a, **k: full_passes.append(1) or change_probabilities(*a, **k)
    started = time.thread_time()
    for counts, n in checks:
        rule.decides(counts, n)
    elapsed = time.thread_time() - started
    return len(checks), elapsed * 1e6 / max(1, len(checks)), len(full_passes) / max(1, len(checks))

if __name__ == "__main__":
    main()
