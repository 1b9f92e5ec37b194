from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Scientists' workbench (review, expert labels, export)"

    def ready(self) -> None:
        from retraining.vote_sources import register_expert_votes

        from . import signals  # noqa: F401  (connects the receivers)
        from .selectors import expert_vote_counts

        # Training runs with an expert weight read the expert labels through this hook:
        # retraining never imports review.
        register_expert_votes(expert_vote_counts)
