"""Reads: training runs, model versions, the active model's prediction for a galaxy and the
stored embeddings."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from django.db.models import QuerySet

from classifier.samples import sample_fractions_from_bytes
from classifier.tree import DecisionTree
from workflows.models import Workflow

from .models import GalaxyEmbedding, ModelVersion, Prediction, TrainingRun


def training_runs(*, workflow: Workflow | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.select_related("workflow", "model_version", "triggered_by")
    return runs.filter(workflow=workflow) if workflow is not None else runs


def model_versions(*, workflow: Workflow) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(workflow=workflow).select_related("run")


def active_model_version(*, workflow: Workflow) -> ModelVersion | None:
    return ModelVersion.objects.filter(workflow=workflow, is_active=True).first()


def active_encoder_version(*, workflow: Workflow) -> ModelVersion | None:
    """The encoder version behind the workflow's active model (itself, or a head's encoder)."""
    active = ModelVersion.objects.filter(workflow=workflow, is_active=True).select_related("encoder").first()
    return active.encoder_version if active is not None else None


def prediction_block(*, prediction: Prediction, tree: DecisionTree) -> dict[str, Any]:
    """A stored prediction per question and answer: mean fraction, 90% credible interval and
    each posterior sample's fraction (None for rows stored before samples were kept)."""
    version = prediction.model_version
    index = {column: i for i, column in enumerate(version.answer_columns)}
    samples = (sample_fractions_from_bytes(prediction.sample_fractions, len(version.answer_columns)).round(4)
               if prediction.sample_fractions else None)
    questions = []
    for question in tree.questions:
        answers = []
        for answer in question.answers:
            i = index.get(answer.column)
            if i is not None:
                answers.append({"answer": answer.key, "label": answer.label, "fraction": prediction.fractions[i],
                                "lower": prediction.lower[i], "upper": prediction.upper[i],
                                "samples": samples[:, i].tolist() if samples is not None else None})
        questions.append({"question": question.key, "text": question.text, "answers": answers})
    return {"model_version": version.number, "model_version_id": version.pk, "interval": 0.9,
            "acquisition": prediction.acquisition, "entropy": prediction.entropy,
            "predicted_at": prediction.created_at, "questions": questions}


def active_predictions_for_galaxy(*, galaxy_id: int) -> dict[int, dict[str, Any]]:
    """Per workflow id: the workflow's active model's prediction for this galaxy, if stored."""
    predictions = (Prediction.objects.filter(galaxy_id=galaxy_id, model_version__is_active=True)
                   .select_related("model_version__workflow"))
    return {p.model_version.workflow_id: prediction_block(prediction=p, tree=p.model_version.workflow.decision_tree)
            for p in predictions}


def embedding_chunks(*, model_version_id: int, chunk_size: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """An encoder version's stored embeddings as ``(galaxy ids (G,), vectors (G, D) float32)``
    chunks in galaxy-id order (keyset pagination: memory is one chunk)."""
    from classifier.live_head import EMBEDDING_DTYPE, embeddings_from_bytes

    last = 0
    while rows := list(GalaxyEmbedding.objects.filter(model_version_id=model_version_id, galaxy_id__gt=last)
                       .order_by("galaxy_id").values_list("galaxy_id", "vector")[:chunk_size]):
        ids, vectors = zip(*rows)
        last = ids[-1]
        yield np.asarray(ids, dtype=np.int64), embeddings_from_bytes(vectors, len(vectors[0]) // EMBEDDING_DTYPE.itemsize)


def galaxy_embedding(*, model_version_id: int, galaxy_id: int) -> np.ndarray | None:
    from classifier.live_head import EMBEDDING_DTYPE, embeddings_from_bytes

    row = GalaxyEmbedding.objects.filter(model_version_id=model_version_id, galaxy_id=galaxy_id).values_list(
        "vector", flat=True).first()
    return None if row is None else embeddings_from_bytes([bytes(row)], len(row) // EMBEDDING_DTYPE.itemsize)[0]
