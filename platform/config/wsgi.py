"""WSGI entry point: ``gunicorn --pythonpath platform config.wsgi``."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Web threads each do small numpy work per request (the retirement check on every counted vote);
# OpenBLAS's own thread pool made that check cost 316 µs of CPU per call against 247 µs with one
# thread (docs/retirement.md). Set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

from core.db import bound_request_statements  # noqa: E402

# Request processes only: their statements and lock waits are bounded (settings.DATABASE_STATEMENT_TIMEOUT).
bound_request_statements()
