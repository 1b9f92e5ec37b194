"""Budget-aware first picks on embeddings: TypiClust (Hacohen, Dekel & Weinshall 2022,
"Active Learning on a Budget: Opposite Strategies Suit High and Low Budgets").

With a few dozen labels a model's uncertainty is mostly noise, and uncertainty sampling is
known to lose to picking *typical* examples that *cover* the data: cluster the embeddings
into (labelled + batch) clusters, take the largest clusters that hold no labelled galaxy,
and from each the galaxy in its densest region (typicality = 1 / mean distance to its
k nearest neighbours in the cluster). Clustering is scikit-learn's k-means (MiniBatch for
large pools), so the cost stays seconds for 100k galaxies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.neighbors import NearestNeighbors

TYPICALITY_NEIGHBOURS = 20
MINIBATCH_ABOVE = 20_000


def typicality(embeddings: np.ndarray, k: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """1 / mean Euclidean distance to the ``k`` nearest other points, ``(N, D)`` -> ``(N,)``."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if len(embeddings) < 2:
        return np.ones(len(embeddings))
    k = min(k, len(embeddings) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(embeddings).kneighbors(embeddings)
    return 1.0 / (distances[:, 1:].mean(1) + 1e-12)


def typiclust(embeddings: np.ndarray, n_pick: int, *, labelled: Sequence[int] = (), seed: int = 0,
              k_neighbours: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """Indices (into ``embeddings``, none of ``labelled``) of ``n_pick`` typical galaxies, one
    per uncovered cluster, largest clusters first."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labelled = np.asarray(labelled, dtype=np.int64)
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
