#!/usr/bin/env python
"""Catalogue export memory and speed: peak RSS and wall time of ``manage.py export_catalog``
in each format for a quarter, a half and all of N galaxies, to show memory stays flat as the
catalogue grows (it streams EXPORT_CHUNK_SIZE galaxies at a time).

    python tests/benchmarks/export_benchmark.py --galaxies 100000
    python tests/benchmarks/export_benchmark.py --galaxies 1000000        # 1M on PostgreSQL, on demand

Each size is built with workbench_benchmark.build (same database, galaxy_h_bench by default:
galaxies, tallies, an active model's predictions) and exported by a fresh child process,
whose ru_maxrss is the peak RSS. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workbench_benchmark as wb  # noqa: E402

FORMATS = ("csv", "fits", "parquet")


def export_once(fmt: str, out: Path, database_url: str, chunk_size: int) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, bytes written) of one export in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "export_catalog", wb.WORKFLOW, "--format", fmt,
                    "--out", str(out), "--chunk-size", str(chunk_size)],
                   cwd=wb.ROOT, check=True, env={**os.environ, "DATABASE_URL": database_url},
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return seconds, peak / 1024, out.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/galaxy_h_bench")
    parser.add_argument("--galaxies", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    parser.add_argument("--sizes", nargs="+", type=int, help="catalogue sizes (default: a quarter, half and all)")
    parser.add_argument("--reuse", action="store_true", help="keep a database workbench_benchmark built at that size")
    args = parser.parse_args()
    wb.setup_django(args.database_url)
    sizes = args.sizes or [args.galaxies // 4, args.galaxies // 2, args.galaxies]
    print(f"chunk size {args.chunk_size}; peak RSS is the exporting process's (Python, Django, pandas, "
          f"astropy, pyarrow included)")
    print(f"{'galaxies':>10} {'format':>8} {'seconds':>8} {'galaxies/s':>11} {'peak RSS MiB':>13} {'file MiB':>9}")
    with tempfile.TemporaryDirectory() as scratch:
        for n in sizes:
            wb.build(n, seed=0, reuse=args.reuse, log=lambda *_: None)
            for fmt in args.formats:
                out = Path(scratch) / f"catalogue.{fmt}"
                # A fresh interpreter per export, so each peak is its own (ru_maxrss of children
                # is a running maximum, hence one grandchild per measurement).
                seconds, peak, size = _measured(fmt, out, args)
                print(f"{n:>10,} {fmt:>8} {seconds:>8.1f} {n / seconds:>11,.0f} {peak:>13.0f} {size / 2**20:>9.1f}"
                      f"   load {wb.load_average()}", flush=True)
                out.unlink()


def _measured(fmt: str, out: Path, args) -> tuple[float, float, int]:
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import export_benchmark as e; "
            "print(json.dumps(e.export_once(sys.argv[2], __import__('pathlib').Path(sys.argv[3]), sys.argv[4], "
            "int(sys.argv[5]))))")
    result = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parent), fmt, str(out),
                             args.database_url, str(args.chunk_size)], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"export of {fmt} failed:\n{result.stderr[-3000:]}")
    import json

    seconds, peak, size = json.loads(result.stdout.strip().splitlines()[-1])
    return seconds, peak, size


if __name__ == "__main__":
    main()
