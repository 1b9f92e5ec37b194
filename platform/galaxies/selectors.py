"""Reads for the galaxy import and demo."""

from __future__ import annotations

from collections.abc import Iterable

from .models import Galaxy


def galaxies_by_id_str(*, id_strs: Iterable[str]) -> dict[str, Galaxy]:
    return {galaxy.id_str: galaxy for galaxy in Galaxy.objects.filter(id_str__in=list(id_strs))}


def existing_id_strs(*, id_strs: Iterable[str]) -> set[str]:
    return set(Galaxy.objects.filter(id_str__in=list(id_strs)).values_list("id_str", flat=True))
