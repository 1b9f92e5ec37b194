"""The queue's rule: how a model version's acquisition scores become queue priorities — the
budget-aware start, then BALD or power BALD, the rule the simulation found best
(docs/active_learning.md, "Small batches, five seeds").

* **Order of the scored galaxies** (``QUEUE_ACQUISITION``): ``bald``, the tree-BALD score itself,
  or ``power-bald``, ``BALD ** β · e^G`` with Gumbel noise G drawn once here
  (``classifier.acquisition_batch.queue_priorities``: the simulation's ``power_sample`` as a
  continuous order).
* **Budget-aware start** (``QUEUE_COVERAGE_LABELS``): while fewer galaxies of the workflow than
  that have votes, TypiClust (``classifier.coverage.typiclust``) on the version's encoder
  embeddings picks typical galaxies that cover the embedding space — as many as the start has
  labels left, the voted (and retired) galaxies counting as covered — and they queue first, in
  pick order, above every scored galaxy (``ranked_first``).

Computed once, when a version's scores are complete (a head refresh before its one transaction,
an encoder run's apply step, the demo's installed model) and stored with them
(``Prediction.priority``, the rule on ``ModelVersion.queue_rule``); activation and roll-back copy
the stored priorities, so every way a version becomes active gives the same queue and no web
request ever clusters embeddings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q

from classifications.models import SubjectStatus
from classifier.acquisition_batch import queue_priorities, ranked_first


@dataclass(frozen=True)
class QueueKeys:
    """Priorities (one per scored galaxy, in the given order) and the rule that made them."""

    priorities: np.ndarray
    rule: dict[str, Any]


def covered_galaxies(*, workflow_id: int) -> tuple[np.ndarray, int]:
    """Sorted ids of the galaxies the start no longer needs to reach — voted on, or retired (a
    retired galaxy is never shown) — and how many of the workflow's galaxies have votes."""
    statuses = SubjectStatus.objects.filter(workflow_id=workflow_id)
    covered = np.asarray(statuses.filter(Q(classification_count__gt=0) | Q(retired_at__isnull=False))
                         .order_by("galaxy_id").values_list("galaxy_id", flat=True), dtype=np.int64)
    return covered, statuses.filter(classification_count__gt=0).count()


def queue_keys(*, workflow_id: int, galaxy_ids: np.ndarray, acquisition: np.ndarray, embedded_ids: np.ndarray,
               embeddings: np.ndarray, seed: int) -> QueueKeys:
    """Queue priorities of ``galaxy_ids`` (sorted) from their ``acquisition`` scores under the
    settings' rule; the start's TypiClust runs on every embedded galaxy of the encoder
    (``embedded_ids`` sorted, rows of ``embeddings``) and ranks its picks among ``galaxy_ids`` first."""
    acquisition_rule = settings.QUEUE_ACQUISITION
    rule: dict[str, Any] = {"acquisition": acquisition_rule, "seed": seed}
    if acquisition_rule == "power-bald":
        rule["beta"] = settings.QUEUE_POWER_BETA
    rng = np.random.default_rng(seed)
    priorities = queue_priorities(acquisition, rule=acquisition_rule, beta=settings.QUEUE_POWER_BETA, seed=rng)
    budget = settings.QUEUE_COVERAGE_LABELS
    if budget <= 0 or len(galaxy_ids) == 0 or len(embedded_ids) == 0:
        return QueueKeys(priorities, rule)
    covered, voted = covered_galaxies(workflow_id=workflow_id)
    if voted >= budget:
        return QueueKeys(priorities, rule)
    from classifier.coverage import CLUSTER_AT_MOST, typiclust  # scikit-learn: only where a start runs

    started = time.perf_counter()
    labelled = np.flatnonzero(np.isin(embedded_ids, covered))
    typiclust_seed = int(rng.integers(1 << 31))
    picked_ids = embedded_ids[typiclust(embeddings, budget - voted, labelled=labelled, seed=typiclust_seed)]
    positions = np.clip(np.searchsorted(galaxy_ids, picked_ids), 0, len(galaxy_ids) - 1)
    rows = positions[galaxy_ids[positions] == picked_ids]
    rule["start"] = {"rule": "typiclust", "coverage_labels": budget, "voted": voted, "picks": len(rows),
                     "seed": typiclust_seed,
                     "galaxies_clustered": min(len(embedded_ids), CLUSTER_AT_MOST),
                     "seconds": round(time.perf_counter() - started, 3)}
    return QueueKeys(ranked_first(priorities, rows), rule)

