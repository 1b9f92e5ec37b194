"""Safe defaults: the settings as a fresh process sees them with a given environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PRODUCTION_KEY = "prod-like-3b8f0e6a1d9c4f27b5e8a0c6d2f4b9e1a7c3d5f8b0e2a4c6"
# Variables a developer's shell, pytest-env or an earlier test (the browser tests' async switch)
# may have set, which a production host would not.
UNSET = ("DEBUG", "SECRET_KEY", "HTTPS_ONLY", "SECURE_SSL_REDIRECT", "BEHIND_TLS_PROXY", "SECURE_HSTS_SECONDS",
         "SECURE_HSTS_PRELOAD", "ALLOWED_HOSTS", "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL",
         "DJANGO_ALLOW_ASYNC_UNSAFE")


def run_python(tmp_path: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items() if key not in UNSET}
    base.update(VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="config.settings", **env)
    prelude = "import sys; sys.path[:0] = ['platform', '.']\n"
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=REPO_ROOT, env=base, capture_output=True,
                          text=True, timeout=120)


def production_env(**extra: str) -> dict[str, str]:
    return {"SECRET_KEY": PRODUCTION_KEY, "ALLOWED_HOSTS": "galaxy.example.org", **extra}


def test_debug_is_off_when_nothing_sets_it(tmp_path):
    result = run_python(tmp_path, "from django.conf import settings; print(settings.DEBUG)", SECRET_KEY=PRODUCTION_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path):
    result = run_python(tmp_path, "import django; django.setup()")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_the_demo_gets_a_random_key_kept_in_var(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    first, second = run_python(tmp_path, code, DEBUG="1"), run_python(tmp_path, code, DEBUG="1")
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "var" / "secret_key"
    assert first.stdout.strip() == second.stdout.strip() == key_file.read_text().strip()
    assert len(first.stdout.strip()) >= 50
    assert key_file.stat().st_mode & 0o077 == 0, "the key file must be readable by its owner only"
    other = run_python(tmp_path / "other-checkout", code, DEBUG="1")
    assert other.stdout.strip() != first.stdout.strip()


def test_deploy_check_is_clean_with_production_settings(tmp_path):
    code = ("import django; django.setup()\n"
            "from django.core.management import call_command\n"
            "call_command('check', deploy=True, fail_level='WARNING')\n")
    result = run_python(tmp_path, code, **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_deploy_check_flags_debug_in_production(tmp_path):
    """The check above can fail: with DEBUG on it reports security.W018."""
    code = ("import django; django.setup()\n"
            "from django.core.management import call_command\n"
            "call_command('check', deploy=True, fail_level='WARNING')\n")
    result = run_python(tmp_path, code, **production_env(DEBUG="1"))
    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr


RESPONSE_HEADERS = """
import django, json; django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)  # the site's footer reads the galaxies table
from django.test import Client
client = Client(HTTP_HOST="galaxy.example.org")
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", secure=True)
proxied = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
cookie = secure.cookies.get("csrftoken")
print(json.dumps({
    "plain_status": plain.status_code, "plain_location": plain.headers.get("Location"),
    "secure_status": secure.status_code, "proxied_status": proxied.status_code,
    "hsts": secure.headers.get("Strict-Transport-Security"),
    "csp": secure.headers.get("Content-Security-Policy"),
    "cookie_secure": bool(cookie and cookie["secure"]),
}))
"""


@pytest.mark.parametrize("behind_proxy", [False, True])
def test_production_responses_force_https_and_carry_the_security_headers(tmp_path, behind_proxy):
    env = production_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    if behind_proxy:
        env["BEHIND_TLS_PROXY"] = "1"
    result = run_python(tmp_path, RESPONSE_HEADERS, **env)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain_status"] == 301
    assert seen["plain_location"] == "https://galaxy.example.org/accounts/login/"
    assert seen["secure_status"] == 200
    # X-Forwarded-Proto is believed only when the deployment says a proxy sets it.
    assert seen["proxied_status"] == (200 if behind_proxy else 301)
    assert seen["hsts"] == "max-age=31536000; includeSubDomains"
    assert "script-src 'self'" in seen["csp"] and "'unsafe-inline'" not in seen["csp"]
    assert seen["cookie_secure"] is True
