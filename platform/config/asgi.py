"""ASGI entry point: ``uvicorn --app-dir platform config.asgi:application``."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

application = get_asgi_application()

from core.db import bound_request_statements  # noqa: E402

# Request processes only: their statements and lock waits are bounded (settings.DATABASE_STATEMENT_TIMEOUT).
bound_request_statements()
