"""Reads for the galaxy import and demo."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from django.db.models import Q

from .models import Galaxy
from .sky import angular_separation_deg, cone_pixel_ranges


def galaxies_by_id_str(*, id_strs: Iterable[str]) -> dict[str, Galaxy]:
    return {galaxy.id_str: galaxy for galaxy in Galaxy.objects.filter(id_str__in=list(id_strs))}


def existing_id_strs(*, id_strs: Iterable[str]) -> set[str]:
    return set(Galaxy.objects.filter(id_str__in=list(id_strs)).values_list("id_str", flat=True))


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
