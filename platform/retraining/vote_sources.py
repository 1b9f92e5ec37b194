"""Expert votes for training, supplied by a higher layer: retraining never imports the review
app, which registers its expert labels here in its ``AppConfig.ready`` (a one-slot registry; no
source registered means no expert votes). A run with ``expert_weight`` w adds w votes for every
answer of every expert label to the training targets of that galaxy (never to the hold-out,
whose volunteer votes stay the yardstick every version is compared on)."""

from __future__ import annotations

from collections.abc import Callable

from workflows.models import Workflow

ExpertVotes = Callable[[Workflow], dict[int, dict[str, int]]]
_source: list[ExpertVotes] = []


def register_expert_votes(source: ExpertVotes) -> None:
    """``source(workflow)`` → ``{galaxy id: {answer column: expert answers}}``."""
    _source[:] = [source]


def expert_votes(*, workflow: Workflow, weight: int) -> dict[int, dict[str, int]]:
    """Per galaxy, the votes to add to its training targets (``weight`` per expert answer)."""
    if weight <= 0 or not _source:
        return {}
    return {galaxy_id: {column: weight * n for column, n in counts.items()}
            for galaxy_id, counts in _source[0](workflow).items()}
