from django.apps import AppConfig


class RetrainingConfig(AppConfig):
    name = "retraining"
    verbose_name = "Retraining: training runs, model versions and predictions"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the automatic-retraining check)
