"""Web processes bound their statements and lock waits (core.db.bound_request_statements), workers
and management commands do not; a submit blocked on a locked status row past the bound is a JSON
503 with Retry-After that stores nothing, and its retry with the same key succeeds."""

import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from django.db import connection, connections, transaction

from classifications.models import Classification, SubjectStatus
from classifications.services import ensure_subject_statuses
from config import REPO_ROOT
from core.db import bound_request_statements
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bounded(settings):
    """This process's connections as a web process's, with short bounds."""
    settings.DATABASE_LOCK_TIMEOUT, settings.DATABASE_STATEMENT_TIMEOUT = 300, 1000
    bound_request_statements()
    yield
    for alias in connections:
        connections[alias].close()
        connections[alias].settings_dict["OPTIONS"].pop("options", None)


@pytest.mark.usefixtures("bounded")
def test_a_web_connection_has_the_bounds():
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        lock_timeout = cursor.fetchone()[0]
        cursor.execute("SHOW statement_timeout")
        assert (lock_timeout, cursor.fetchone()[0]) == ("300ms", "1s")


def _test_database_url() -> str:
    """The test database, for a child process (the configured database need not exist: CI only
    has the one pytest-django creates)."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _shown_timeouts(code: str) -> str:
    script = ("import sys; sys.path.insert(0, 'platform'); " + code +
              "; from django.db import connection; c = connection.cursor(); "
              "c.execute('SHOW statement_timeout'); a = c.fetchone()[0]; c.execute('SHOW lock_timeout'); "
              "print(a, c.fetchone()[0])")
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=120, env={**os.environ, "DATABASE_URL": _test_database_url()})
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout.split("\n")[-2]


def test_only_the_web_entry_points_bound_statements():
    web = _shown_timeouts("import config.wsgi")
    worker = _shown_timeouts("import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
                             "import django; django.setup(); from config.celery import app")
    assert (web, worker) == ("10s 5s", "0 0")


@pytest.mark.usefixtures("bounded")
def test_a_submit_blocked_on_a_lock_past_the_bound_is_a_json_503_and_stores_nothing():
    galaxy = GalaxyFactory()
    ensure_subject_statuses(galaxy_ids=[galaxy.id])
    locked, release = threading.Event(), threading.Event()

    def hold_the_status_row():
        try:
            with transaction.atomic():
                list(SubjectStatus.objects.select_for_update().filter(galaxy=galaxy))
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_the_status_row)
    holder.start()
    assert locked.wait(30)
    client = volunteer_client()
    body = {"workflow": "gz-decals-dr5", "galaxy": galaxy.id_str, "annotations": decals_smooth_path(),
            "idempotency_key": uuid.uuid4().hex}
    try:
        start = time.monotonic()
        response = client.post("/api/classifications/", body, format="json")
        waited = time.monotonic() - start
    finally:
        release.set()
        holder.join(30)
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json" and response["Retry-After"]
    assert response.json()["code"] == "database_busy"
    assert waited < 5
    assert not Classification.objects.exists()
    retried = client.post("/api/classifications/", body, format="json")
    assert retried.status_code == 201, retried.json()
    assert SubjectStatus.objects.get(galaxy=galaxy, workflow__slug="gz-decals-dr5").classification_count == 1
