from django.apps import AppConfig


class ClassificationsConfig(AppConfig):
    name = "classifications"
    verbose_name = "Classifications and the subject queue"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (status rows for new galaxies and workflows)
