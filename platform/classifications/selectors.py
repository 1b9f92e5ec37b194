"""Reads: the next galaxies for a volunteer, and a galaxy's vote tallies as fractions per question."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from core.db import hot_path_cursor
from galaxies.models import Galaxy
from workflows.models import Workflow

from .models import Classification, SubjectStatus


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One galaxy to show: what the volunteer sees (no metadata) and why it was picked."""

    galaxy_id: int
    id_str: str
    ra: float
    dec: float
    survey: str
    pixel_scale: float | None
    image: str
    is_simulated: bool
    priority: float
    classification_count: int
    selection: str


def _queue_sql(*, condition: str, order_by: str, sort_key: str, limit: int) -> str:
    """Unretired galaxies of a workflow the volunteer has not classified. Plain SQL (PostgreSQL
    and SQLite alike): compiling the equivalent queryset cost more CPU than running it. Each
    lookup walks a partial index (subject_queue_priority / subject_queue_draw) and probes the
    volunteer's history (classification_seen_by) per row. The limit is part of the text: with a
    parameter there, a prepared statement's generic plan guesses a tenth of the table and scans
    it in parallel."""
    status, galaxy, classification = (SubjectStatus._meta.db_table, Galaxy._meta.db_table,
                                      Classification._meta.db_table)
    return f"""SELECT s.galaxy_id, g.id_str, g.ra, g.dec, g.survey, g.pixel_scale, g.image, g.is_simulated,
               s.priority, s.classification_count, {sort_key} AS sort_key
        FROM {status} s JOIN {galaxy} g ON g.id = s.galaxy_id
        WHERE s.workflow_id = %s AND s.retired_at IS NULL {condition}
          AND NOT EXISTS (SELECT 1 FROM {classification} c WHERE c.volunteer_key = %s
                          AND c.workflow_id = s.workflow_id AND c.galaxy_id = s.galaxy_id)
        ORDER BY {order_by} LIMIT {int(limit)}"""


_BY_PRIORITY = {"condition": "", "order_by": "s.priority DESC", "sort_key": "-s.priority"}
_DRAW_FROM = {"condition": "AND s.draw_key >= %s", "order_by": "s.draw_key", "sort_key": "s.draw_key"}
_DRAW_BEFORE = {"condition": "AND s.draw_key < %s", "order_by": "s.draw_key", "sort_key": "s.draw_key"}


def _fetch_queue(*, workflow: Workflow, volunteer_key: str, exclude: list[int],
                 parts: list[tuple[dict[str, str], list, int]]) -> list[list[tuple]]:
    """Rows for each (query shape, its condition's parameters, limit), in order, from one statement."""
    not_in = f" AND s.galaxy_id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
    statements, params = [], []
    for index, (shape, condition_params, limit) in enumerate(parts):
        inner = _queue_sql(**{**shape, "condition": shape["condition"] + not_in}, limit=limit)
        statements.append(f"SELECT {index} AS part, * FROM ({inner}) p{index}")
        params += [workflow.id, *condition_params, *exclude, volunteer_key]
    by_part: list[list[tuple]] = [[] for _ in parts]
    with hot_path_cursor() as cursor:
        cursor.execute(" UNION ALL ".join(statements) + " ORDER BY part, sort_key", params)
        for row in cursor.fetchall():
            by_part[row[0]].append(row[1:-1])
    return by_part


def _item(row: tuple, selection: str) -> QueueItem:
    galaxy_id, id_str, ra, dec, survey, pixel_scale, image, is_simulated, priority, count = row
    return QueueItem(galaxy_id=galaxy_id, id_str=id_str, ra=ra, dec=dec, survey=survey, pixel_scale=pixel_scale,
                     image=image, is_simulated=bool(is_simulated), priority=priority, classification_count=count,
                     selection=selection)


def next_subjects(*, workflow: Workflow, volunteer_key: str, limit: int = 10,
                  random_fraction: float | None = None, exclude_galaxy_ids: list[int] | tuple[int, ...] = (),
                  rng: random.Random | None = None) -> list[QueueItem]:
    """Unretired galaxies this volunteer has not classified: highest priority first, with a
    share drawn uniformly at random (Galaxy Zoo's 'spice', keeping training and evaluation
    sets unbiased) slotted in at random places. Both lookups walk a partial index and probe
    the volunteer's history per row, so cost does not grow with the catalogue; it grows with
    how many of the top-priority galaxies this volunteer has already classified.

    One statement fetches the random draw and the top `limit` by priority together; the
    priority items the draw already took are dropped here, which leaves enough since at most
    `n_random` of the top `limit` can be taken."""
    rng = rng or random.Random()
    fraction = workflow.random_fraction if random_fraction is None else random_fraction
    n_random = sum(rng.random() < fraction for _ in range(limit))
    exclude = [int(galaxy_id) for galaxy_id in exclude_galaxy_ids]
    by_priority = (_BY_PRIORITY, [], limit)
    if not n_random:
        (top,) = _fetch_queue(workflow=workflow, volunteer_key=volunteer_key, exclude=exclude, parts=[by_priority])
        return [_item(row, Classification.Selection.PRIORITY) for row in top]
    threshold = rng.random()
    spice, top = _fetch_queue(workflow=workflow, volunteer_key=volunteer_key, exclude=exclude, parts=[
        (_DRAW_FROM, [threshold], n_random), by_priority])
    if len(spice) < n_random:  # the draw wrapped past the highest key
        (more,) = _fetch_queue(workflow=workflow, volunteer_key=volunteer_key, exclude=exclude, parts=[
            (_DRAW_BEFORE, [threshold], n_random - len(spice))])
        spice += more
    chosen = {row[0] for row in spice}
    queue = [_item(row, Classification.Selection.PRIORITY) for row in top if row[0] not in chosen]
    del queue[limit - len(spice):]
    for row in spice:
        queue.insert(rng.randint(0, len(queue)), _item(row, Classification.Selection.RANDOM))
    return queue


def galaxy_tallies(*, galaxy: Galaxy, workflow_slug: str | None = None) -> list[dict[str, Any]]:
    """The galaxy's tally in each workflow (or only the one named): counts, retirement, queue
    priority and the votes per question (the tree's summary)."""
    statuses = galaxy.subject_statuses.select_related("workflow")
    if workflow_slug:
        statuses = statuses.filter(workflow__slug=workflow_slug)
    return [{"workflow_id": s.workflow_id, "workflow": s.workflow.slug, "classification_count": s.classification_count,
             "retired_at": s.retired_at, "retirement_reason": s.retirement_reason, "priority": s.priority,
             "questions": s.workflow.decision_tree.summary(s.vote_counts)} for s in statuses]


def volunteer_history(*, volunteer_key: str) -> QuerySet[Classification]:
    return Classification.objects.filter(volunteer_key=volunteer_key).select_related("galaxy", "workflow")
