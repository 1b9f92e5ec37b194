"""Django project package. Importing it (from manage.py, wsgi/asgi, Celery or pytest, all of
which put ``platform/`` on sys.path) also puts the repository root on sys.path so that the
``classifier`` and ``frontend`` packages resolve, and loads the Celery app."""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PLATFORM_DIR = REPO_ROOT / "platform"
for _path in (PLATFORM_DIR, REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from .celery import app as celery_app  # noqa: E402

__all__ = ["celery_app", "REPO_ROOT", "PLATFORM_DIR"]
