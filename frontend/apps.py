from django.apps import AppConfig


class FrontendConfig(AppConfig):
    name = "frontend"
    verbose_name = "Volunteer web UI"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)
