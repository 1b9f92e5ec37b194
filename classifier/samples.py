"""The spread of a posterior's samples in a compact form the platform stores with each
prediction: per galaxy, every sample's mean fraction per answer (α_k / A_q of sample t),
``(T, A)`` little-endian float16 — 2·T·A bytes (340 B at T = 5 on the DECaLS tree), a tenth of
the sample concentrations as float32 JSON. numpy only: the web process decodes it for the
dossier chart without loading torch."""

from __future__ import annotations

import numpy as np

from classifier.schema import Schema

SAMPLE_DTYPE = np.dtype("<f2")  # float16: 0.0005 resolution on [0, 1], far below the spread drawn


def sample_fraction_bytes(concentrations: np.ndarray, schema: Schema) -> list[bytes]:
    """``(G, T, A)`` concentration samples → one byte string per galaxy."""
    conc = np.asarray(concentrations, dtype=np.float64)
    totals = np.stack([conc[..., start:stop].sum(-1) for start, stop in schema.question_slices], axis=-1)
    fractions = conc / totals[..., schema.answer_question]
    compact = np.ascontiguousarray(fractions, dtype=SAMPLE_DTYPE)
    return [row.tobytes() for row in compact]


def sample_fractions_from_bytes(data: bytes, n_answers: int) -> np.ndarray:
    """Inverse of :func:`sample_fraction_bytes` for one galaxy: ``(T, A)`` float32."""
    flat = np.frombuffer(bytes(data), dtype=SAMPLE_DTYPE)
    if n_answers <= 0 or flat.size % n_answers:
        raise ValueError(f"sample bytes do not hold rows of {n_answers} answers")
    return flat.reshape(-1, n_answers).astype(np.float32)
