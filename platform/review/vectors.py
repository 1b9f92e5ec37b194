"""Nearest neighbours in an encoder's embedding (cosine similarity: inner product of unit
vectors) with faiss, a kept library for exactly this, rather than hand-written search.

Up to ``REVIEW_EXACT_INDEX_LIMIT`` vectors the index is exact (a flat float32 scan: 1 KiB a
galaxy at D = 256, a few ms a query at 100k); above it an inverted file (4·√N k-means cells,
the ``REVIEW_INDEX_NPROBE`` nearest searched) of float16 codes (the precision the embeddings
are stored in): 512 B a galaxy, recall and latency at 1M in
tests/benchmarks/neighbours_benchmark.py."""

from __future__ import annotations

import math
from collections.abc import Iterable

import faiss
import numpy as np

EXACT = "exact"
IVF = "ivf"


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1)


def new_index(*, dim: int, n_vectors: int, exact_limit: int) -> tuple[faiss.Index, str]:
    """An empty index for ``n_vectors`` unit vectors, galaxy ids as faiss ids."""
    if n_vectors <= exact_limit:
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), EXACT
    cells = max(1, min(int(4 * math.sqrt(n_vectors)), n_vectors // 40))
    quantizer = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFScalarQuantizer(quantizer, dim, cells, faiss.ScalarQuantizer.QT_fp16,
                                        faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexIDMap2(ivf), IVF


def training_size(index: faiss.Index) -> int:
    """How many vectors training needs (0 for the exact index): 40 per k-means cell."""
    inner = faiss.downcast_index(index.index)
    return 0 if inner.is_trained else 40 * inner.nlist


def train(index: faiss.Index, sample: np.ndarray) -> None:
    faiss.downcast_index(index.index).train(normalised(sample))


def add(index: faiss.Index, galaxy_ids: np.ndarray, vectors: np.ndarray) -> None:
    index.add_with_ids(normalised(vectors), np.asarray(galaxy_ids, dtype=np.int64))


def to_bytes(index: faiss.Index) -> bytes:
    return faiss.serialize_index(index).tobytes()


def from_bytes(data: bytes) -> faiss.Index:
    return faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))


def search(index: faiss.Index, query: np.ndarray, *, k: int, nprobe: int) -> list[tuple[int, float]]:
    """The ``k`` nearest (galaxy id, cosine similarity) to one vector, most similar first."""
    inner = faiss.downcast_index(index.index)
    params = faiss.SearchParametersIVF(nprobe=nprobe) if isinstance(inner, faiss.IndexIVF) else None
    similarities, ids = index.search(normalised(query[None, :]), k, params=params)
    return [(int(i), float(s)) for i, s in zip(ids[0], similarities[0]) if i >= 0]


def exact_search(chunks: Iterable[tuple[np.ndarray, np.ndarray]], query: np.ndarray, *,
                 k: int) -> list[tuple[int, float]]:
    """Brute force over ``(galaxy ids, vectors)`` chunks, keeping the running top ``k``
    (memory: one chunk): what the neighbours are before a version's index is built."""
    query = normalised(query[None, :])[0]
    best_ids, best = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    for ids, vectors in chunks:
        best_ids = np.concatenate([best_ids, np.asarray(ids, dtype=np.int64)])
        best = np.concatenate([best, normalised(vectors) @ query])
        if len(best) > k:
            keep = np.argpartition(-best, k - 1)[:k]
            best_ids, best = best_ids[keep], best[keep]
    order = np.lexsort((best_ids, -best))
    return [(int(best_ids[i]), float(best[i])) for i in order]
