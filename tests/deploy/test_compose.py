"""deploy/compose.yaml: valid against the compose-spec schema, and consistent with the rest
of deploy/ (same process commands as the systemd units, files and services it names exist)."""

import re
import shlex
import subprocess

import pytest
import yaml

from .conftest import DEPLOY

COMPOSE = DEPLOY / "compose.yaml"
APP_SERVICES = ("migrate", "web", "worker", "worker-gpu", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_spec_schema(tool):
    out = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def systemd_command(unit: str) -> list[str]:
    line = next(line for line in (DEPLOY / "systemd" / unit).read_text().splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    return [argv[0].rsplit("/", 1)[-1], *argv[1:]]


def without_node_name(argv: list[str]) -> list[str]:
    """The -n node name differs by design (%h of a host vs a container)."""
    return [a for i, a in enumerate(argv) if a != "-n" and (i == 0 or argv[i - 1] != "-n")]


@pytest.mark.parametrize(("service", "unit"), [
    ("web", "galaxy-web.service"), ("worker", "galaxy-worker-default.service"),
    ("worker-gpu", "galaxy-worker-gpu@.service"), ("beat", "galaxy-beat.service")])
def test_services_run_the_systemd_units_commands(compose, service, unit):
    assert without_node_name(compose["services"][service]["command"]) == without_node_name(systemd_command(unit))


def test_gpu_worker_takes_one_task_on_one_reserved_gpu(compose):
    gpu = compose["services"]["worker-gpu"]
    command = gpu["command"]
    assert command[command.index("-Q") + 1] == "gpu"
    assert command[command.index("--concurrency") + 1] == "1"
    assert command[command.index("--prefetch-multiplier") + 1] == "1"
    assert gpu["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert gpu["build"]["dockerfile"] == "deploy/docker/worker.Dockerfile"
    assert compose["services"]["web"]["build"]["dockerfile"] == "deploy/docker/web.Dockerfile"


def test_app_services_run_as_non_root_after_migrations(compose):
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["user"] == "10001:10001", name
        assert service["env_file"] == ".env", name
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    migrate = " ".join(compose["services"]["migrate"]["command"])
    assert "migrate --noinput" in migrate and "collectstatic --noinput" in migrate


def test_stateful_services_have_volumes_and_healthchecks(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "web", "nginx", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redisdata:/data" in services["redis"]["volumes"]
    assert "--appendonly" in services["redis"]["command"]
    declared = set(compose["volumes"])
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith("."):
                assert source in declared, (name, source)
            else:
                assert (DEPLOY / source).exists() or source in ("./certs", "./backup"), (name, source)
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    assert set(services["flower"]["profiles"]) == {"flower"} and services["worker-gpu"]["profiles"] == ["gpu"]


def test_nginx_serves_the_shared_static_and_media_volumes(compose):
    nginx = compose["services"]["nginx"]
    assert "./nginx/compose.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert {"static:/srv/galaxy-platform/static:ro", "media:/srv/galaxy-platform/media:ro"} <= set(nginx["volumes"])
    conf = (DEPLOY / "nginx" / "compose.conf").read_text()
    assert "alias /srv/galaxy-platform/static/;" in conf and "alias /srv/galaxy-platform/media/;" in conf
    assert "client_max_body_size 20m;" in conf


def test_every_variable_compose_reads_is_documented_in_env_example(compose):
    documented = {line.split("=", 1)[0] for line in (DEPLOY / "env.example").read_text().splitlines()
                  if line and not line.startswith("#")}
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    assert used and used <= documented, used - documented
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS"} <= documented


@pytest.mark.parametrize("unit", ["galaxy-worker-default.service", "galaxy-worker-gpu@.service"])
def test_systemd_stops_workers_warmly(unit):
    """systemd's default KillMode sends SIGTERM to the pool children too, killing running tasks."""
    assert "KillMode=mixed" in (DEPLOY / "systemd" / unit).read_text().splitlines()
