"""Reads for the galaxy import and demo."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from django.db.models import Q

from .models import Galaxy
from .sky import angular_separation_deg, cone_pixel_ranges

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


def cone_search(*, ra: float, dec: float, radius_deg: float, queryset=None) -> list[tuple[int, float]]:
    """``(galaxy id, separation in degrees)`` of every galaxy within the cone, nearest first.
    The pixel ranges read only candidate rows through the ``healpix`` index; numpy then keeps
    those truly inside."""
    ranges = cone_pixel_ranges(ra, dec, radius_deg)
    condition = Q()
    for first, last in ranges:
        condition |= Q(healpix__gte=first, healpix__lte=last)
    rows = list((queryset if queryset is not None else Galaxy.objects).filter(condition)
                .values_list("id", "ra", "dec"))
    if not rows:
        return []
    ids, ras, decs = (np.asarray(column) for column in zip(*rows))
    separation = angular_separation_deg(ra, dec, ras, decs)
    inside = separation <= radius_deg
    order = np.lexsort((ids[inside], separation[inside]))
    return [(int(i), float(s)) for i, s in zip(ids[inside][order], separation[inside][order])]
