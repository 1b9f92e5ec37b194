"""Writes on model versions: activating one (a run's new model, an admin's activation or
roll-back), which makes its acquisition scores the workflow's queue priorities. The
training run's own transitions are in ``runs``, which uses this for its last step."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection, transaction
from django.db.models import Max
from django.db.models.functions import Coalesce
from django.utils import timezone

from classifications.services import set_queue_priorities
from workflows.models import Workflow

from .errors import CannotActivate
from .models import GalaxyEmbedding, ModelVersion, Prediction, TrainingRun

UNSCORED_PRIORITY = -1.0  # galaxies the active model has not scored yet queue after all scored ones


@transaction.atomic
def activate_model_version(*, model_version_id: int, activated_by_id: int | None = None) -> ModelVersion:
    """Make this version the workflow's one active model and its acquisition scores the queue
    priorities, in one transaction (used for new models, activation and roll-back alike;
    ``activated_by_id`` is the person, None when the gate activates a run's new model)."""
    version = ModelVersion.objects.select_related("workflow").get(pk=model_version_id)
    workflow = Workflow.objects.select_for_update().get(pk=version.workflow_id)
    if not version.predictions_complete:
        raise CannotActivate(f"model v{version.number} has no complete catalogue predictions", field="model_version")
    if version.tree_hash != workflow.tree_hash:
        raise CannotActivate(f"model v{version.number} predicts another version of the '{workflow.slug}' tree",
                             field="model_version")
    ModelVersion.objects.filter(workflow=workflow, is_active=True).exclude(pk=version.pk).update(is_active=False)
    version.is_active, version.activated_at, version.activated_by_id = True, timezone.now(), activated_by_id
    version.save(update_fields=["is_active", "activated_at", "activated_by"])
    _refresh_prediction_statistics()
    # The priorities stored with the version's scores (retraining.queue); rows stored before the
    # queue rule existed have none and queue by their acquisition score, as they always did.
    stored = Prediction.objects.filter(model_version=version).annotate(
        queue_priority=Coalesce("priority", "acquisition"))
    set_queue_priorities(workflow_id=workflow.pk, scores=stored, score_field="queue_priority",
                         default=UNSCORED_PRIORITY)
    return version


@transaction.atomic
def record_queue_priorities(*, model_version_id: int, priorities: dict[int, float], rule: dict[str, Any]) -> None:
    """Store an encoder version's queue priorities (``{prediction id: priority}``, only the rows
    that change) and the rule that made them, once its catalogue is predicted and before it can
    become active (retraining.queue)."""
    Prediction.objects.bulk_update([Prediction(pk=pk, priority=value) for pk, value in priorities.items()],
                                   ["priority"], batch_size=1000)
    ModelVersion.objects.filter(pk=model_version_id).update(queue_rule=rule)


@transaction.atomic
def insert_predictions(*, rows: list[Prediction]) -> None:
    """Insert new prediction rows: on PostgreSQL one ``COPY`` (a head refresh writes 100k rows a
    minute; multi-row INSERTs of 1,000 took most of its write step), elsewhere ``bulk_create``."""
    if connection.vendor != "postgresql":
        Prediction.objects.bulk_create(rows, batch_size=1000)
        return
    names = ("model_version", "galaxy", "fractions", "lower", "upper", "acquisition", "priority", "entropy",
             "sample_fractions", "created_at")
    columns = ", ".join(connection.ops.quote_name(Prediction._meta.get_field(name).column) for name in names)
    now, dumps = timezone.now(), json.dumps
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {connection.ops.quote_name(Prediction._meta.db_table)} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row((row.model_version_id, row.galaxy_id, dumps(row.fractions), dumps(row.lower),
                            dumps(row.upper), row.acquisition, row.priority, row.entropy, row.sample_fractions,
                            now))


def _refresh_prediction_statistics() -> None:
    """PostgreSQL plans the priority UPDATE's per-galaxy lookup from table statistics; when a
    version's rows were just inserted (a head refresh inserts them in this very transaction)
    the statistics say the version has none, the planner scans the version-id index instead of
    the (version, galaxy) one, and 100k galaxies took minutes instead of a second. ANALYZE
    (which counts this transaction's own rows) samples a bounded number of rows: well under a
    second at any table size."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Prediction._meta.db_table}")


@transaction.atomic
def prune_head_predictions(*, workflow_id: int, keep: int) -> int:
    """Delete the predictions of head versions older than the newest ``keep`` (never the
    active one): a refresh a minute writes a catalogue of rows each time. A pruned version
    stays in the registry with ``predictions_complete`` off, so it can no longer be activated;
    encoder versions keep theirs (roll-back to them always works). Returns versions pruned."""
    heads = ModelVersion.objects.filter(workflow_id=workflow_id, kind=TrainingRun.Kind.HEAD, predictions_complete=True,
                                        is_active=False).order_by("-number")
    newest = list(ModelVersion.objects.filter(workflow_id=workflow_id, kind=TrainingRun.Kind.HEAD)
                  .order_by("-number").values_list("pk", flat=True)[:max(keep, 0)])
    stale = list(heads.exclude(pk__in=newest).values_list("pk", flat=True))
    if stale:
        Prediction.objects.filter(model_version_id__in=stale).delete()
        ModelVersion.objects.filter(pk__in=stale).update(predictions_complete=False)
    return len(stale)


@transaction.atomic
def register_pretrained_version(*, workflow: Workflow, checkpoint_name: str, checkpoint_sha256: str,
                                checkpoint_bytes: int, tree_hash: str, metrics: dict[str, Any],
                                train_metrics: dict[str, Any]) -> ModelVersion:
    """An inactive version of a checkpoint trained elsewhere (no training run: the demo's
    shipped default model); it predicts the catalogue before it can be activated."""
    workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
    if tree_hash != workflow.tree_hash:
        raise CannotActivate(f"the checkpoint predicts another version of the '{workflow.slug}' tree",
                             field="checkpoint")
    number = (ModelVersion.objects.filter(workflow=workflow).aggregate(n=Max("number"))["n"] or 0) + 1
    return ModelVersion.objects.create(
        workflow=workflow, number=number, checkpoint=checkpoint_name, checkpoint_sha256=checkpoint_sha256,
        checkpoint_bytes=checkpoint_bytes, tree_hash=tree_hash, answer_columns=list(workflow.decision_tree.answer_columns),
        metrics=metrics, train_metrics=train_metrics)


@transaction.atomic
def complete_predictions(*, model_version_id: int, rows: list[Prediction],
                         embeddings: list[GalaxyEmbedding]) -> ModelVersion:
    """Store a version's catalogue predictions and its galaxies' embeddings (replacing any
    earlier ones: the live head retrains on the embeddings) and mark the predictions complete."""
    Prediction.objects.filter(model_version_id=model_version_id).delete()
    insert_predictions(rows=rows)
    GalaxyEmbedding.objects.filter(model_version_id=model_version_id).delete()
    GalaxyEmbedding.objects.bulk_create(embeddings, batch_size=2000)
    ModelVersion.objects.filter(pk=model_version_id).update(predictions_complete=True)
    return ModelVersion.objects.get(pk=model_version_id)
