"""Shared fixtures and the markers' skip rules."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()


def pytest_collection_modifyitems(config, items):
    skip_shared = pytest.mark.skip(reason=f"real survey data not found at {SHARED_DATA} (only developer machines and CI have ../shared)")
    on_postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")
    for item in items:
        if "shared_data" in item.keywords and not SHARED_DATA.is_dir():
            item.add_marker(skip_shared)
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)


@pytest.fixture
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _shipped_workflows(request):
    """A transactional test's flush drops the workflows the migrations install (and
    serialized_rollback restores them only for some orders of tests): put them back. The flush
    also re-creates content types under new ids, so this process's cached ids go stale (an
    admin save would log against a missing one): forget them."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server"))
    if transactional:
        request.getfixturevalue("transactional_db")
        from django.contrib.contenttypes.models import ContentType

        from workflows.services import install_shipped_workflows

        ContentType.objects.clear_cache()
        install_shipped_workflows()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Request rates and lockouts live in the shared cache: each test starts with none (nor with
    a broker backoff left by another test's failed publish)."""
    from django.core.cache import cache

    from core.broker import resume_publishing

    cache.clear()
    resume_publishing()
