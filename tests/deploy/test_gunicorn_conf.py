"""deploy/gunicorn.conf.py as gunicorn itself reads it: workers are timed out, given a grace
period, and recycled with jitter; and a request's broker wait fits well inside the timeout."""

import runpy

from django.conf import settings
from gunicorn.config import Config

from .conftest import DEPLOY


def gunicorn_config(monkeypatch, **env) -> Config:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = Config()
    for name, value in runpy.run_path(str(DEPLOY / "gunicorn.conf.py")).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_workers_time_out_get_a_grace_period_and_are_recycled_with_jitter(monkeypatch):
    config = gunicorn_config(monkeypatch)
    assert config.worker_class_str == "gthread"
    assert 10 <= config.timeout <= 60
    assert 0 < config.graceful_timeout <= config.timeout
    assert config.max_requests >= 1000
    assert 0 < config.max_requests_jitter < config.max_requests
    # One bounded publish (core.broker: acquire + connect + command) fits many times in the timeout.
    assert 3 * settings.BROKER_SOCKET_TIMEOUT < config.timeout / 5


def test_the_environment_can_tune_them(monkeypatch):
    config = gunicorn_config(monkeypatch, GUNICORN_TIMEOUT="45", GUNICORN_MAX_REQUESTS="800",
                             GUNICORN_MAX_REQUESTS_JITTER="80")
    assert (config.timeout, config.max_requests, config.max_requests_jitter) == (45, 800, 80)
