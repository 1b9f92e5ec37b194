"""Budget-aware first picks on embeddings: TypiClust (Hacohen, Dekel & Weinshall 2022,
"Active Learning on a Budget: Opposite Strategies Suit High and Low Budgets").

With a few dozen labels a model's uncertainty is mostly noise, and uncertainty sampling is
known to lose to picking *typical* examples that *cover* the data: cluster the embeddings
into (labelled + batch) clusters, take the largest clusters that hold no labelled galaxy,
and from each the galaxy in its densest region (typicality = 1 / mean distance to its
k nearest neighbours in the cluster). Clustering is scikit-learn's k-means (MiniBatch for
large pools) on at most ``CLUSTER_AT_MOST`` galaxies — every labelled one and a uniform draw
of the rest — in one thread, so the cost stays about a CPU-second for 100k galaxies
(docs/retraining.md, "The queue's rule").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

TYPICALITY_NEIGHBOURS = 20
MINIBATCH_ABOVE = 10_000
# A uniform sample of 20,000 galaxies still has ~100 a cluster at the 200 clusters of the
# platform's start (the simulation's whole pool was 2,703), and clustering 100k instead cost
# 7 CPU-s against 0.8 (random 256-d embeddings, one thread).
CLUSTER_AT_MOST = 20_000


def typicality(embeddings: np.ndarray, k: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """1 / mean Euclidean distance to the ``k`` nearest other points, ``(N, D)`` -> ``(N,)``."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if len(embeddings) < 2:
        return np.ones(len(embeddings))
    k = min(k, len(embeddings) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(embeddings).kneighbors(embeddings)
    return 1.0 / (distances[:, 1:].mean(1) + 1e-12)


def typiclust(embeddings: np.ndarray, n_pick: int, *, labelled: Sequence[int] = (), seed: int = 0,
              k_neighbours: int = TYPICALITY_NEIGHBOURS, at_most: int = CLUSTER_AT_MOST) -> np.ndarray:
    """Indices (into ``embeddings``, none of ``labelled``) of ``n_pick`` typical galaxies, one
    per uncovered cluster, largest clusters first (pick order). Above ``at_most`` galaxies the
    clusters are those of every labelled galaxy plus a uniform draw of the others, ``at_most``
    in all, and the picks come from that draw.

    In one BLAS/OpenMP thread: on two shared cores scikit-learn's threads spin while they wait
    and k-means on 100k galaxies cost 13 CPU-s against 1.7 in one thread."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labelled = np.unique(np.asarray(labelled, dtype=np.int64))
    if len(embeddings) <= at_most:
        with threadpool_limits(limits=1):
            return _typiclust(embeddings, n_pick, labelled, seed, k_neighbours)
    free = np.setdiff1d(np.arange(len(embeddings)), labelled)
    drawn = np.random.default_rng(seed).choice(free, size=max(at_most - len(labelled), 0), replace=False)
    sample = np.sort(np.concatenate([labelled, drawn]))
    with threadpool_limits(limits=1):
        picked = _typiclust(embeddings[sample], n_pick, np.searchsorted(sample, labelled), seed, k_neighbours)
    return sample[picked]


def _typiclust(embeddings: np.ndarray, n_pick: int, labelled: np.ndarray, seed: int,
               k_neighbours: int) -> np.ndarray:
    n_free = len(embeddings) - len(np.unique(labelled))
    n_pick = min(n_pick, n_free)
    if n_pick <= 0:
        return np.zeros(0, dtype=np.int64)
    n_clusters = min(len(embeddings), len(labelled) + n_pick)
    kmeans_type = MiniBatchKMeans if len(embeddings) > MINIBATCH_ABOVE else KMeans
    assignment = kmeans_type(n_clusters=n_clusters, random_state=seed, n_init=1).fit_predict(embeddings)
    sizes = np.bincount(assignment, minlength=n_clusters)
    covered = np.zeros(n_clusters, dtype=bool)
    covered[assignment[labelled]] = True
    is_free = np.ones(len(embeddings), dtype=bool)
    is_free[labelled] = False
    picked: list[int] = []
    # Largest uncovered clusters first; when clusters run out, covered ones are reused.
    order = sorted(range(n_clusters), key=lambda c: (covered[c], -sizes[c], c))
    while len(picked) < n_pick:
        progress = False
        for cluster in order:
            members = np.flatnonzero((assignment == cluster) & is_free)
            if len(members) == 0:
                continue
            best = members[np.argmax(typicality(embeddings[assignment == cluster], k_neighbours)
                                     [np.searchsorted(np.flatnonzero(assignment == cluster), members)])]
            picked.append(int(best))
            is_free[best] = False
            progress = True
            if len(picked) == n_pick:
                break
        if not progress:
            break
    return np.asarray(picked, dtype=np.int64)
