"""Celery application. Start workers from the repository root with
``celery --workdir platform -A config worker -Q default,gpu`` (see README)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("galaxy_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
