from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitoring (health, metrics, worker heartbeats)"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the Celery and classification receivers)
