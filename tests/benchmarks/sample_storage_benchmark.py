#!/usr/bin/env python
"""What keeping each posterior sample's fractions costs a catalogue prediction: writing
``Prediction`` rows with and without ``sample_fractions`` (float16 ``(T, A)`` bytes), side by
side in one run, alternating, median of the repeats; and the bytes a row gains.

    python tests/benchmarks/sample_storage_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/galaxy_a
    python tests/benchmarks/sample_storage_benchmark.py --rows 5000                  # SQLite in a temporary folder

Throw-away schema (PostgreSQL: the database's public schema is dropped first). Nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT / "platform", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=5, help="T: RETRAIN_PREDICT_MC_SAMPLES (heads: 8)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sample-storage-bench-"))
    os.environ.update({"VAR_DIR": str(workdir / "var"), "MEDIA_ROOT": str(workdir / "media"),
                       "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1"})
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    import django
    from django.core.management import call_command

    django.setup()
    from django.db import connection, transaction

    from classifier.samples import sample_fraction_bytes
    from classifier.schema import Schema
    from galaxies.models import Galaxy
    from retraining.models import ModelVersion, Prediction
    from workflows.models import Workflow
    from workflows.shipped import DECALS_DR5

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0)
    workflow = Workflow.objects.get(slug=DECALS_DR5)
    schema = Schema(workflow.decision_tree)
    Galaxy.objects.bulk_create([Galaxy(id_str=f"S{i:07d}", ra=1.0, dec=1.0, survey="synthetic")
                                for i in range(args.rows)], batch_size=5000)
    ids = list(Galaxy.objects.order_by("pk").values_list("pk", flat=True))
    rng = np.random.default_rng(0)
    concentrations = rng.gamma(3.0, 2.0, (args.rows, args.samples, schema.n_answers)) + 0.1
    samples = sample_fraction_bytes(concentrations, schema)
    fractions = [round(float(v), 5) for v in rng.random(schema.n_answers)]
    version = ModelVersion.objects.create(workflow=workflow, number=1, checkpoint="x.pt", checkpoint_sha256="0" * 64,
                                          tree_hash=workflow.tree_hash, answer_columns=list(schema.tree.answer_columns))
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for with_samples in (False, True):
            rows = [Prediction(model_version=version, galaxy_id=g, fractions=fractions, lower=fractions,
                               upper=fractions, acquisition=0.1, entropy=1.0,
                               sample_fractions=samples[i] if with_samples else None) for i, g in enumerate(ids)]
            started = time.perf_counter()
            with transaction.atomic():
                Prediction.objects.bulk_create(rows, batch_size=1000)
            times[with_samples].append(time.perf_counter() - started)
            Prediction.objects.all().delete()
    plain, kept = (statistics.median(times[k]) for k in (False, True))
    print(f"{args.rows:,} Prediction rows, {schema.n_answers} answers, T = {args.samples}, {connection.vendor}, "
          f"median of {args.repeats} (alternating)")
    print(f"without samples: {plain:.2f} s   with samples: {kept:.2f} s   (+{kept - plain:.2f} s, "
          f"{100 * (kept / plain - 1):+.0f}%); +{len(samples[0])} B a row of samples")
    print(f"all times: {times}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
