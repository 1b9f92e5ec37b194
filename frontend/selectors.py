"""Reads for the volunteer UI: live site counts, the field guide, a volunteer's history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from classifications.models import Classification
from classifications.selectors import volunteer_history
from galaxies.models import Galaxy
from retraining.selectors import active_model_version
from workflows.models import Workflow
from workflows.selectors import active_workflows
from workflows.shipped import DEFAULT_WORKFLOW

from .models import FieldGuideExample


def default_workflow() -> Workflow | None:
    """The workflow "Start classifying" opens: DEFAULT_WORKFLOW (gz2) when active, else the first active one."""
    workflows = active_workflows()
    return workflows.filter(slug=DEFAULT_WORKFLOW).first() or workflows.first()


def current_model_version(workflow: Workflow | None) -> str | None:
    """The active model of the workflow volunteers are sent to; None until one is trained."""
    version = active_model_version(workflow=workflow) if workflow else None
    return f"v{version.number}" if version else None


def image_sources() -> list[str]:
    """The surveys of the galaxies this site actually shows (for the footer's credits)."""
    return [s for s in Galaxy.objects.order_by("survey").values_list("survey", flat=True).distinct() if s]


def site_stats() -> dict[str, Any]:
    return {
        "galaxies": Galaxy.objects.count(),
        "classifications": Classification.objects.count(),
        "volunteers": Classification.objects.filter(is_simulated=False).values("volunteer_key").distinct().count(),
        "model_version": current_model_version(default_workflow()),
    }


def field_guide(*, workflow: Workflow) -> dict[str, Any]:
    """Every question with its help and, per answer, the help text and example pictures."""
    examples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for example in FieldGuideExample.objects.filter(workflow=workflow).select_related("galaxy"):
        url = example.image_url
        if url:
            examples.setdefault((example.question, example.answer), []).append({
                "image_url": url, "caption": example.caption,
                "galaxy": example.galaxy.id_str if example.galaxy else None})
    tree = workflow.decision_tree
    return {
        "workflow": workflow.slug,
        "questions": [{
            "key": q.key, "text": q.text, "help": q.help,
            "answers": [{"key": a.key, "label": a.label, "column": a.column, "help": a.help,
                         "examples": examples.get((q.key, a.key), [])} for a in q.answers],
        } for q in tree.questions],
    }


@dataclass(frozen=True)
class HistoryRow:
    classification: Classification
    path: list[tuple[str, str]]  # (question text, answer label)


def history_queryset(*, volunteer_key: str, favourites: bool = False) -> QuerySet[Classification]:
    queryset = volunteer_history(volunteer_key=volunteer_key)
    return queryset.filter(is_favourite=True) if favourites else queryset


def history_rows(classifications: list[Classification]) -> list[HistoryRow]:
    """Annotations as the volunteer saw them: question text and answer label (keys if the tree changed)."""
    rows = []
    for classification in classifications:
        tree = classification.workflow.decision_tree
        path = []
        for annotation in classification.annotations:
            question_key, answer_key = annotation.get("question", ""), annotation.get("answer", "")
            question = tree.question(question_key) if question_key in tree else None
            answer = question.answer(answer_key) if question else None
            path.append((question.text if question else question_key, answer.label if answer else answer_key))
        rows.append(HistoryRow(classification=classification, path=path))
    return rows
