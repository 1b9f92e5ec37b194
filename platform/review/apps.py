from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Scientists' workbench (review, expert labels, export)"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)
