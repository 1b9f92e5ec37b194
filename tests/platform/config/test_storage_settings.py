"""STORAGE_BACKEND picks the default storage from the environment (deploy/env.example)."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PROBE = ("import django; django.setup(); from django.core.files.storage import storages; s = storages['default']; "
         "print(type(s).__name__, getattr(s, 'bucket_name', ''), getattr(s, 'endpoint_url', ''), "
         "getattr(s, 'file_overwrite', ''))")


def settings_probe(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STORAGE_"))}
    return subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT / "platform", capture_output=True, text=True,
                          env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env}, timeout=120)


def test_s3_backend_from_the_environment(tmp_path):
    result = settings_probe(STORAGE_BACKEND="s3", AWS_STORAGE_BUCKET_NAME="galaxy-media",
                            AWS_S3_ENDPOINT_URL="http://minio:9000", VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["S3Storage", "galaxy-media", "http://minio:9000", "False"]
    # deploy/env.example's empty values leave the endpoint (and credentials) to boto3's defaults.
    aws = settings_probe(STORAGE_BACKEND="s3", AWS_STORAGE_BUCKET_NAME="galaxy-media", AWS_S3_ENDPOINT_URL="",
                         AWS_ACCESS_KEY_ID="", VAR_DIR=str(tmp_path))
    assert aws.returncode == 0, aws.stderr
    assert aws.stdout.split() == ["S3Storage", "galaxy-media", "None", "False"]


def test_local_files_by_default_and_unknown_backends_refused(tmp_path):
    default = settings_probe(VAR_DIR=str(tmp_path))
    assert default.returncode == 0, default.stderr
    assert default.stdout.split()[0] == "FileSystemStorage"
    unknown = settings_probe(STORAGE_BACKEND="nfs", VAR_DIR=str(tmp_path))
    assert unknown.returncode != 0 and "STORAGE_BACKEND must be 'filesystem' or 's3', not 'nfs'" in unknown.stderr
