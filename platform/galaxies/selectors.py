"""Reads for the galaxy import and demo."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .models import Galaxy

# Galaxy.metadata key for votes published elsewhere (e.g. Galaxy Zoo 2's): {"workflow": slug,
# "counts": {answer column: votes}, "image": "SDSS", "voters": "Galaxy Zoo 2 volunteers"}.
PUBLISHED_VOTES = "published_votes"


def galaxies_by_id_str(*, id_strs: Iterable[str]) -> dict[str, Galaxy]:
    return {galaxy.id_str: galaxy for galaxy in Galaxy.objects.filter(id_str__in=list(id_strs))}


def existing_id_strs(*, id_strs: Iterable[str]) -> set[str]:
    return set(Galaxy.objects.filter(id_str__in=list(id_strs)).values_list("id_str", flat=True))


def published_votes(*, workflow_slug: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(galaxy id, published votes)`` of every galaxy whose metadata carries votes for this workflow."""
    rows = Galaxy.objects.filter(**{f"metadata__{PUBLISHED_VOTES}__workflow": workflow_slug})
    for galaxy_id, metadata in rows.values_list("id", "metadata").iterator():
        yield galaxy_id, metadata[PUBLISHED_VOTES]
