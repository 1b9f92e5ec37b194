"""deploy/backup: dump the (PostgreSQL) test database, restore it into a throwaway database,
and the restore script verifies it; a damaged archive or a non-empty target is refused."""

import subprocess
import uuid

import psycopg
import pytest
from django.db import connection

from classifications.models import Classification
from galaxies.models import Galaxy
from tests.platform.factories import GalaxyFactory, decals_smooth_path, volunteer_client

from .conftest import DEPLOY

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
SCRIPTS = DEPLOY / "backup"


def database_url(name: str) -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


@pytest.fixture
def throwaway_database():
    name = f"{connection.settings_dict['NAME']}_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield database_url(name)
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(*argv, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=300, **kwargs)


def some_data() -> None:

    for galaxy in GalaxyFactory.create_batch(5):
        response = volunteer_client().post("/api/classifications/", {
            "workflow": "gz-decals-dr5", "galaxy": galaxy.id_str, "annotations": decals_smooth_path(),
            "idempotency_key": uuid.uuid4().hex}, format="json")
        assert response.status_code == 201


def test_dump_restore_into_a_fresh_database_and_verify(tool, tmp_path, throwaway_database):
    tool("pg_dump")
    some_data()
    source = database_url(connection.settings_dict["NAME"])
    dumped = run(SCRIPTS / "backup-postgres.sh", source, tmp_path)
    assert dumped.returncode == 0, dumped.stderr
    archive = dumped.stdout.strip().splitlines()[-1]
    manifest = dict(line.split() for line in open(f"{archive}.counts").read().splitlines())
    assert int(manifest["galaxies_galaxy"]) == Galaxy.objects.count() == 5
    assert int(manifest["classifications_classification"]) == Classification.objects.count() == 5

    restored = run(SCRIPTS / "restore-postgres.sh", archive, throwaway_database)
    assert restored.returncode == 0, restored.stderr
    assert "row counts match the manifest" in restored.stdout
    with psycopg.connect(throwaway_database) as target:
        ids = {row[0] for row in target.execute("SELECT id_str FROM galaxies_galaxy")}
        assert ids == set(Galaxy.objects.values_list("id_str", flat=True))
        applied = target.execute("SELECT count(*) FROM django_migrations").fetchone()[0]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM django_migrations")
        assert applied == cursor.fetchone()[0]

    again = run(SCRIPTS / "restore-postgres.sh", archive, throwaway_database)
    assert again.returncode == 1 and "refusing to restore" in again.stderr


def test_damaged_archive_is_refused(tool, tmp_path, throwaway_database):
    tool("pg_dump")
    dumped = run(SCRIPTS / "backup-postgres.sh", database_url(connection.settings_dict["NAME"]), tmp_path)
    assert dumped.returncode == 0, dumped.stderr
    archive = dumped.stdout.strip().splitlines()[-1]
    with open(archive, "r+b") as handle:
        handle.seek(200)
        handle.write(b"\0" * 16)
    restored = run(SCRIPTS / "restore-postgres.sh", archive, throwaway_database)
    assert restored.returncode == 2 and "checksum mismatch" in restored.stderr
    with psycopg.connect(throwaway_database) as target:
        assert target.execute("SELECT count(*) FROM information_schema.tables "
                              "WHERE table_schema = 'public'").fetchone()[0] == 0
