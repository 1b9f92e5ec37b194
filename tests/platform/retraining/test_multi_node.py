"""Several nodes that share only PostgreSQL, Redis and an S3-compatible object store (moto's
server, started here): two Celery workers, each with its own empty MEDIA_ROOT, VAR_DIR and
cache, and the web side (this test process, with a third set of folders). A run trains on one
worker, its chunked prediction is spread over both, and the checkpoint is read back through
the storage by the other worker and by the web process, its sha256 verified each time."""

import io
import logging
import os
import random
import re
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image
from rest_framework.test import APIClient

from classifications.services import Submission, ensure_subject_statuses, submit_classification
from classifications.volunteers import Volunteer
from core.storage import local_copy, read_bytes, sha256_of_bytes
from galaxies.models import Galaxy
from galaxies.services import PreparedGalaxy, write_galaxies
from monitoring.models import WorkerHeartbeat
from retraining.models import ModelVersion, Prediction, TrainingRun
from workflows.models import Workflow

from .conftest import FEATURED, GATE_OPEN, SMOOTH, TINY_TRAINING
from .test_worker import (
    REPO_ROOT,
    admin_client,
    kill,
    redis_unreachable_reason,
    wait_for,
    wait_until_finished,
    worker_database_url,
)

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.slow,
              pytest.mark.django_db(transaction=True, serialized_rollback=True)]
GALAXIES, CHUNK_SIZE = 30, 4
BUCKET = "galaxy-test"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_S3_REGION_NAME": "us-east-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3_endpoint():
    """moto's S3 server on a free local port with one empty bucket."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


@pytest.fixture
def web_on_s3(settings, s3_endpoint, tmp_path):
    """This process (the web node) stores through the bucket, with folders of its own."""
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": BUCKET, "endpoint_url": s3_endpoint, "access_key": "testing", "secret_key": "testing",
        "region_name": "us-east-1", "addressing_style": "path", "file_overwrite": False}}}
    settings.MEDIA_ROOT = tmp_path / "web" / "media"
    settings.STORAGE_CACHE_DIR = tmp_path / "web" / "cache"
    return s3_endpoint


def galaxy_png(bright: bool, seed: int) -> bytes:
    rng = random.Random(seed)
    level = rng.randrange(170, 255) if bright else rng.randrange(30, 110)
    image = Image.new("RGB", (24, 24), (level // 4,) * 3)
    for _ in range(40):
        image.putpixel((rng.randrange(24), rng.randrange(24)), (level, level, rng.randrange(256)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def import_catalogue() -> dict[str, bool]:
    """GALAXIES galaxies through the import service (images into the bucket); id_str → bright."""
    bright = {f"mn-{i:03d}": i % 2 == 0 for i in range(GALAXIES)}
    write_galaxies(prepared=[PreparedGalaxy(id_str=id_str, ra=float(i), dec=0.0, image_ext="png",
                                            image_bytes=galaxy_png(is_bright, i))
                             for i, (id_str, is_bright) in enumerate(bright.items())])
    ensure_subject_statuses()
    return bright


def vote(workflow: Workflow, bright: dict[str, bool], volunteers: int) -> None:
    rng = random.Random(1)
    for v in range(volunteers):
        for id_str, is_bright in bright.items():
            submit_classification(
                submission=Submission(workflow_slug=workflow.slug, galaxy_id_str=id_str,
                                      annotations=SMOOTH if is_bright != (rng.random() < 0.2) else FEATURED,
                                      idempotency_key=uuid.uuid4().hex),
                volunteer=Volunteer.anonymous(f"mn-{v}"), is_simulated=True)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def pool_parent(pid: int) -> int:
    """The worker (main process) whose prefork pool child ``pid`` is."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^PPid:\s+(\d+)", status, re.MULTILINE).group(1))


def test_run_trains_on_one_node_predicts_on_both_and_checkpoint_reads_back_everywhere(web_on_s3, tmp_path):
    if reason := redis_unreachable_reason():
        pytest.skip(reason)
    workers, nodes = [], {}
    try:
        for name in ("w1", "w2"):
            node = tmp_path / name
            env = {**os.environ, "ACTIVATION_MAX_LOSS_INCREASE": str(GATE_OPEN),
           "DATABASE_URL": worker_database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                   "STORAGE_BACKEND": "s3", "AWS_STORAGE_BUCKET_NAME": BUCKET, "AWS_S3_ENDPOINT_URL": web_on_s3,
                   "AWS_S3_ADDRESSING_STYLE": "path", **CREDENTIALS,
                   "MEDIA_ROOT": str(node / "media"), "VAR_DIR": str(node / "var"),
                   "STORAGE_CACHE_DIR": str(node / "cache"), "MONITORING_HEARTBEAT_INTERVAL": "1",
                   "RETRAIN_AFTER_CLASSIFICATIONS": "0", "RETRAIN_MIN_GALAXIES": "5",
                   "RETRAIN_PREDICT_CHUNK_SIZE": str(CHUNK_SIZE), "RETRAIN_PREDICT_MC_SAMPLES": "3",
                   "OMP_NUM_THREADS": "1"}
            node.mkdir()
            log = open(tmp_path / f"worker-{name}.log", "w")
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "--workdir", "platform", "-A", "config", "worker", "-Q", "gpu,default",
                 "--concurrency", "1", "--prefetch-multiplier", "1", "-l", "info", "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            nodes[workers[-1].pid] = name

        workflow = Workflow.objects.get(slug="gz-decals-dr5")
        bright = import_catalogue()
        stored = {g.image.name for g in Galaxy.objects.all()}
        keys = {o["Key"] for o in boto3.client("s3", endpoint_url=web_on_s3, aws_access_key_id="testing",
                                               aws_secret_access_key="testing", region_name="us-east-1")
                .list_objects_v2(Bucket=BUCKET)["Contents"]}
        assert len(stored) == GALAXIES and stored <= keys  # the images are in the bucket, nowhere else
        vote(workflow, bright, volunteers=2)
        # Both workers up (heartbeats from worker_ready) before the run, so both can take chunks.
        wait_for(lambda: set(WorkerHeartbeat.objects.filter(pid__in=list(nodes)).values_list("pid", flat=True))
                 == set(nodes), 90, tmp_path, "both workers' heartbeats")

        admin = admin_client()
        started = admin.post(f"/api/workflows/{workflow.slug}/training-runs/", {"hyperparameters": TINY_TRAINING},
                             format="json")
        assert started.status_code == 201, started.json()
        run = wait_until_finished(admin, started.json()["id"], tmp_path)
        assert run["status"] == "succeeded", run["error"] + "".join(p.read_text()[-3000:] for p in tmp_path.glob("*.log"))

        record = TrainingRun.objects.get(pk=run["id"])
        trainer = nodes[pool_parent(int(record.worker.rpartition(":")[2]))]
        chunk_pids = [int(pid) for pid in re.findall(r"chunk \d+ predicted on [^:\s]+:(\d+)", run["log"])]
        per_node = {name: 0 for name in nodes.values()}
        for pid in chunk_pids:
            per_node[nodes[pool_parent(pid)]] += 1
        print(f"\ntrained on {trainer}; prediction chunks per worker: {per_node}")
        assert len(chunk_pids) == -(-GALAXIES // CHUNK_SIZE) and all(per_node.values()), per_node

        version = ModelVersion.objects.get(run_id=run["id"])
        assert version.is_active and Prediction.objects.filter(model_version=version).count() == GALAXIES
        # Every node's disk: no media (it is all in the bucket); the checkpoint cached by its hash
        # on both workers (the one that did not train read it from the bucket).
        for name in nodes.values():
            assert files_under(tmp_path / name / "media") == []
            assert (tmp_path / name / "cache" / "sha256" / f"{version.checkpoint_sha256}.pt").is_file(), name
        assert files_under(tmp_path / "web") == []
        # The web process reads the checkpoint back through the storage: same bytes, and it loads.
        assert sha256_of_bytes(read_bytes(version.checkpoint.name)) == version.checkpoint_sha256
        from classifier.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(local_copy(version.checkpoint.name, sha256=version.checkpoint_sha256))
        assert list(checkpoint.schema.answer_columns) == list(version.answer_columns)
        assert default_storage.exists(record.snapshot_file)
        # Browsers get the images from the bucket (signed URLs), not from a web node's disk.
        image_url = APIClient().get("/api/galaxies/mn-000/").json()["image_url"]
        assert image_url.startswith(f"{web_on_s3}/{BUCKET}/galaxies/mn-000") and "Signature=" in image_url
        assert requests.get(image_url, timeout=10).content == galaxy_png(True, 0)
    finally:
        for process in workers:
            kill(process)
