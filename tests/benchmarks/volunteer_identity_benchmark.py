"""CPU cost per vote of the checks issue 15 added to the submit path, in-process, single thread.

1. Who votes: ``volunteer_from_request`` on a request carrying a signed identity cookie (one
   HMAC-SHA256, no database), against what the platform did before and a user would otherwise
   pick — reading the id from the signed-cookie session (``request.session``, also an HMAC plus
   decompress and JSON) — and against a forged token (refused).
2. The shadow-ban probe: ``submit_classification`` (a new galaxy per call) with the ban
   probe folded into the insert, against the same insert without it (the SQL before the
   change), interleaved in blocks, on the configured database (SQLite by default; set
   DATABASE_URL for PostgreSQL).

Prints medians with the interquartile range, and the load average. Run::

    .venv/bin/python tests/benchmarks/volunteer_identity_benchmark.py [--calls 20000] [--votes 400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "platform")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")


def timed(fn, calls: int) -> list[float]:
    """µs per call of fn(), each measured alone (perf_counter_ns around one call)."""
    out = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - start) / 1000)
    return out


def summary(name: str, samples: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(samples, n=4)
    return f"  {name:<58} median {median:8.1f} µs  (IQR {q1:.1f}–{q3:.1f}, n={len(samples)})"


def identity(calls: int) -> None:
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from classifications.volunteers import COOKIE_NAME, token_for, volunteer_from_request

    factory = RequestFactory()
    token = token_for(uuid.uuid4().hex)
    store = import_module("django.contrib.sessions.backends.signed_cookies").SessionStore()
    store["volunteer_id"] = uuid.uuid4().hex
    store.save()

    def with_cookie(name: str, value: str):
        request = factory.post("/api/classifications/")
        request.COOKIES[name] = value
        request.user = AnonymousUser()
        return request

    def new_check():
        assert volunteer_from_request(with_cookie(COOKIE_NAME, token)) is not None

    def old_session():
        request = with_cookie(settings.SESSION_COOKIE_NAME, store.session_key)
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(store.session_key)
        assert request.session["volunteer_id"]

    def forged():
        assert volunteer_from_request(with_cookie(COOKIE_NAME, token[:-2] + "xx")) is None

    def request_only():
        with_cookie(COOKIE_NAME, token)

    results = {name: [] for name in ("request", "new", "old", "forged")}
    for _ in range(10):  # interleaved blocks: drift in machine load hits all alike
        for name, fn in (("request", request_only), ("new", new_check), ("old", old_session), ("forged", forged)):
            results[name] += timed(fn, calls // 10)
    base = statistics.median(results["request"])
    print("Who votes (building the request object itself subtracted from each median):")
    print(summary("request object alone", results["request"]))
    for name, label in (("new", "signed identity cookie (this change)"),
                        ("old", "id in the signed-cookie session (before)"), ("forged", "forged token, refused")):
        print(summary(label, results[name]) + f"   → check {statistics.median(results[name]) - base:.1f} µs")


def ban_probe(votes: int) -> None:
    from django.db import connection
    from django.test.utils import setup_test_environment

    from classifications import tally_store
    from classifications.services import Submission, ensure_subject_statuses, submit_classification
    from classifications.volunteers import Volunteer
    from galaxies.models import Galaxy

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        Galaxy.objects.bulk_create([Galaxy(id_str=f"B{i:07d}", ra=1.0, dec=1.0, survey="bench", image="x.png")
                                    for i in range(2 * votes)])
        ensure_subject_statuses()
        path = [{"question": "smooth-or-featured", "answer": "smooth"}, {"question": "how-rounded", "answer": "round"},
                {"question": "merging", "answer": "none"}]
        galaxies = iter(Galaxy.objects.order_by("id").values_list("id_str", flat=True))
        with_probe = tally_store._INSERT_SQL
        without_probe = with_probe.replace(f"NOT {tally_store._BANNED} AND ", "").replace(
            f"{tally_store._BANNED} AND NOT EXISTS", "FALSE AND NOT EXISTS")
        params_with = tally_store._insert

        def vote():
            submit_classification(submission=Submission(
                workflow_slug="gz-decals-dr5", galaxy_id_str=next(galaxies), annotations=path,
                idempotency_key=uuid.uuid4().hex), volunteer=Volunteer(key="anon:bench"))

        def insert_without_probe(c):
            adapt = connection.ops.adapt_datetimefield_value
            with tally_store.hot_path_cursor() as cursor:
                cursor.execute(without_probe, [
                    c.workflow_id, c.workflow_version, c.galaxy_id, c.user_id, c.volunteer_key,
                    tally_store.json.dumps(c.annotations), c.idempotency_key, c.workflow_id, c.galaxy_id,
                    c.volunteer_key, c.workflow_id, c.galaxy_id, c.volunteer_key, c.selection, c.is_simulated,
                    c.is_favourite, adapt(c.started_at), adapt(c.finished_at), adapt(c.created_at), c.user_agent])
                row = cursor.fetchone()
            return row[0], bool(row[1]), bool(row[2])

        results = {"with": [], "without": []}
        for _ in range(10):
            for name, insert in (("with", params_with), ("without", insert_without_probe)):
                tally_store._insert = insert
                results[name] += timed(vote, votes // 10)
        tally_store._insert = params_with
        print(f"One submit_classification, in-process ({connection.vendor}; wall time of this process and the "
              f"database together, new galaxy each time):")
        print(summary("insert without the ban probe (before)", results["without"]))
        print(summary("insert with the ban probe (this change)", results["with"])
              + f"   → probe {statistics.median(results['with']) - statistics.median(results['without']):+.1f} µs")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--votes", type=int, default=400)
    args = parser.parse_args()
    import django

    django.setup()
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    identity(args.calls)
    ban_probe(args.votes)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")


if __name__ == "__main__":
    main()
