"""Liveness records of the Celery processes, written by the processes themselves so the web
process can tell which queues have a live consumer without asking the broker."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """One Celery worker or beat process, refreshed every ``MONITORING_HEARTBEAT_INTERVAL`` s.
    A process that died without a clean shutdown leaves a row that simply stops ageing well."""

    class Role(models.TextChoices):
        WORKER = "worker", "Worker"
        BEAT = "beat", "Beat"

    name = models.CharField(max_length=200, unique=True, help_text="Celery node name, e.g. gpu0@host.")
    role = models.CharField(max_length=16, choices=Role.choices)
    queues = models.JSONField(default=list, blank=True, help_text="Queues the worker consumes.")
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
