#!/usr/bin/env python
"""CPU per request of the two hot endpoints (next subjects, single submit) through the whole
stack in one process: ``config.wsgi.application`` called with a WSGI environ as gunicorn
builds it (every middleware, DRF, the view, the SQL), on a database built by api_benchmark.py.

    python tests/benchmarks/request_cpu_benchmark.py --database-url postgres://.../galaxy_bench
    python tests/benchmarks/request_cpu_benchmark.py --checkouts /tmp/base . --rounds 4   # A/B, alternated
    python tests/benchmarks/request_cpu_benchmark.py --profile submit                    # cProfile of the submits

Each run is a fresh process (one per checkout and round, alternated ABAB… so a drift in the
machine's load hits both alike): warm-up, then ``--volunteers`` new anonymous volunteers each
fetch ``next?limit=10`` and submit every galaxy they got, one request each, as the benchmark's
HTTP clients do. Reported per request: this process's CPU (Python: Django, DRF, the platform,
psycopg) and its PostgreSQL backend's CPU (from /proc, so PostgreSQL must run on this machine).
Throttle rates are set past what a run reaches (the counters still run, on the Redis cache).
No HTTP parsing: gunicorn's own share is what api_benchmark.py adds on top.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW, TREE = "gz-decals-dr5", "decals_dr5"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/galaxy_bench")
    parser.add_argument("--cache-url", default=os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1"))
    parser.add_argument("--checkouts", nargs="+", default=[str(ROOT)],
                        help="source trees to compare (each run imports the platform from one of them)")
    parser.add_argument("--database-urls", nargs="+", help="one database per checkout (default: --database-url "
                        "for all; give one per checkout when their migrations differ)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per checkout, alternated")
    parser.add_argument("--volunteers", type=int, default=100, help="new volunteers per run (1 next + 10 submits each)")
    parser.add_argument("--settings", default="config.settings",
                        help="settings module (a variant on PYTHONPATH, e.g. one middleware left out)")
    parser.add_argument("--profile", choices=["next", "submit"], help="cProfile one kind of request (one run)")
    parser.add_argument("--profile-lines", type=int, default=45)
    parser.add_argument("--run", help=argparse.SUPPRESS)  # internal: measure in this process, print JSON
    return parser.parse_args()


def environ(method: str, path: str, *, query: str = "", body: bytes = b"", cookie: str = "") -> dict:
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query, "SCRIPT_NAME": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8765", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000", "HTTP_HOST": "127.0.0.1:8765",
            "HTTP_USER_AGENT": "request-cpu-benchmark", "HTTP_ACCEPT": "*/*", "HTTP_COOKIE": cookie,
            "CONTENT_TYPE": "application/json" if body else "", "CONTENT_LENGTH": str(len(body)) if body else "",
            "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.url_scheme": "http",
            "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False}


def call(application, env: dict) -> tuple[int, bytes]:
    status: list[str] = []

    def start_response(line: str, headers, *_) -> None:
        status.append(line)

    result = application(env, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return int(status[0].split()[0]), body


def backend_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure(checkout: str, database_url: str, args: argparse.Namespace) -> dict:
    """In this process: import the checkout's platform, warm up, then time each request."""
    os.environ.update({
        "DATABASE_URL": database_url, "DEBUG": "false", "LOG_LEVEL": "WARNING", "CACHE_URL": args.cache_url,
        "SECRET_KEY": "benchmark-only-not-a-secret-7d2a9f4c1e8b6053a7c9e1f4b2d8a6c0", "HTTPS_ONLY": "0",
        "CONN_MAX_AGE": "600", "DJANGO_SETTINGS_MODULE": args.settings, "OPENBLAS_NUM_THREADS": "1",
        "VAR_DIR": str(Path(checkout) / "var"),
        **{f"THROTTLE_{scope}": "10000000/min" for scope in ("SUBMIT", "SUBMIT_IP", "NEXT", "NEXT_IP")}})
    for path in (str(Path(checkout)), str(Path(checkout) / "platform")):
        sys.path.insert(0, path)
    from django.db import connection

    from classifications.volunteers import token_for
    from classifier.tree import DecisionTree
    from config.wsgi import application

    walks = [DecisionTree.load(TREE).random_path(__import__("random").Random(seed)) for seed in range(200)]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile(time.process_time)
    cpu = {"next": [], "submit": []}
    statuses: dict[str, dict[int, int]] = {"next": {}, "submit": {}}
    pg = {"next": 0, "submit": 0}

    def volunteer_round(index: int, timed: bool) -> None:
        cookie = f"gz_volunteer={token_for(uuid.uuid4().hex)}"
        status, body = timed_call("next", environ("GET", f"/api/workflows/{WORKFLOW}/next/", query="limit=10",
                                                  cookie=cookie), timed)
        if status != 200:
            return
        for n, item in enumerate(json.loads(body)["results"]):
            payload = {"workflow": WORKFLOW, "galaxy": item["galaxy"]["id_str"],
                       "annotations": walks[(index * 10 + n) % len(walks)],
                       "idempotency_key": uuid.uuid4().hex, "selection": item["selection"]}
            timed_call("submit", environ("POST", "/api/classifications/", body=json.dumps(payload).encode(),
                                         cookie=cookie), timed)

    def timed_call(kind: str, env: dict, timed: bool) -> tuple[int, bytes]:
        backend = connection.connection.info.backend_pid if connection.connection is not None else None
        before_pg = backend_ticks(backend) if timed and backend else None
        profiling = profiler is not None and timed and kind == args.profile
        start = time.process_time()
        if profiling:
            profiler.enable()
        status, body = call(application, env)
        if profiling:
            profiler.disable()
        elapsed = time.process_time() - start
        if timed:
            cpu[kind].append(elapsed * 1000)
            statuses[kind][status] = statuses[kind].get(status, 0) + 1
            if before_pg is not None and connection.connection is not None \
                    and connection.connection.info.backend_pid == backend:
                pg[kind] += backend_ticks(backend) - before_pg
        return status, body

    for index in range(10):
        volunteer_round(index, timed=False)
    for index in range(args.volunteers):
        volunteer_round(index, timed=True)
    hz = os.sysconf("SC_CLK_TCK")
    out = {"checkout": checkout, "load": os.getloadavg()[0]}
    for kind in ("next", "submit"):
        out[kind] = {"n": len(cpu[kind]), "python_mean_ms": statistics.fmean(cpu[kind]),
                     "python_median_ms": statistics.median(cpu[kind]),
                     "pg_ms": pg[kind] * 1000 / hz / max(1, len(cpu[kind])), "statuses": statuses[kind]}
    if profiler is not None:
        import pstats

        stream = io.StringIO()
        stats = pstats.Stats(profiler, stream=stream)
        stats.sort_stats("cumulative").print_stats(args.profile_lines)
        stats.sort_stats("tottime").print_stats(args.profile_lines)
        out["profile"] = stream.getvalue()
    return out


def main() -> None:
    args = parse_args()
    if args.run:
        checkout, database_url = json.loads(args.run)
        print(json.dumps(measure(checkout, database_url, args)))
        return
    urls = args.database_urls or [args.database_url] * len(args.checkouts)
    results: dict[str, list[dict]] = {checkout: [] for checkout in args.checkouts}
    for round_ in range(args.rounds):
        order = list(zip(args.checkouts, urls, strict=True))
        for checkout, url in order if round_ % 2 == 0 else order[::-1]:
            command = [sys.executable, __file__, "--run", json.dumps([checkout, url]),
                       "--volunteers", str(args.volunteers), "--cache-url", args.cache_url, "--settings", args.settings]
            if args.profile:
                command += ["--profile", args.profile, "--profile-lines", str(args.profile_lines)]
            output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=checkout).stdout
            result = json.loads(output.strip().splitlines()[-1])
            results[checkout].append(result)
            print(f"{checkout}: load {result['load']:.1f}; " + "; ".join(
                f"{kind} {result[kind]['python_mean_ms']:.2f} ms Python (median {result[kind]['python_median_ms']:.2f})"
                f" + {result[kind]['pg_ms']:.2f} ms PostgreSQL, {result[kind]['statuses']}" for kind in ("next", "submit")),
                flush=True)
            if "profile" in result:
                print(result["profile"])
    print("\nmedians over runs (Python mean per request; PostgreSQL backend per request):")
    for checkout, runs in results.items():
        print(f"  {checkout}: " + "; ".join(
            f"{kind} {statistics.median(r[kind]['python_mean_ms'] for r in runs):.2f} "
            f"({min(r[kind]['python_mean_ms'] for r in runs):.2f}–{max(r[kind]['python_mean_ms'] for r in runs):.2f}) "
            f"+ {statistics.median(r[kind]['pg_ms'] for r in runs):.2f} ms" for kind in ("next", "submit")))


if __name__ == "__main__":
    main()
