"""Fixed, seeded splits of a catalogue by a hash of each galaxy's id.

A hash (not a permutation) keeps a galaxy on the same side whatever else is in the catalogue,
so the encoder's training set, the active-learning pool and the evaluation set never mix
between runs, scripts or machines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

TWO_TIER_SPLIT = {"eval": 0.2, "encoder": 0.4, "pool": 0.4}


def hash_unit(ids: Iterable[object], salt: str = "gz2-two-tier") -> np.ndarray:
    """A uniform number in [0, 1) per id, from SHA-256 of ``salt:id``."""
    values = [int.from_bytes(hashlib.sha256(f"{salt}:{i}".encode()).digest()[:8], "big") for i in ids]
    return np.asarray(values, dtype=np.float64) / 2.0**64


def hash_split(ids: Sequence[object], fractions: Mapping[str, float] = TWO_TIER_SPLIT,
               salt: str = "gz2-two-tier") -> dict[str, np.ndarray]:
    """Indices of ``ids`` per named part, in the order the parts are given."""
    total = sum(fractions.values())
    if total <= 0 or any(f < 0 for f in fractions.values()):
        raise ValueError(f"fractions must be non-negative with a positive sum, got {dict(fractions)}")
    u = hash_unit(ids, salt)
    edges = np.cumsum([0.0, *fractions.values()]) / total
    edges[-1] = 1.0 + 1e-12
    return {name: np.flatnonzero((u >= lo) & (u < hi)) for name, lo, hi in zip(fractions, edges[:-1], edges[1:], strict=True)}
