"""Writes for the volunteer UI."""

from __future__ import annotations

import csv
import heapq
from pathlib import Path

from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Exists, OuterRef

from classifications.models import Classification, SubjectStatus
from classifications.volunteers import Volunteer
from galaxies.selectors import published_votes
from workflows.models import Workflow

from .models import FieldGuideExample


@transaction.atomic
def claim_anonymous_classifications(*, anonymous_key: str, user_id: int) -> int:
    """Move an anonymous session's classifications to the account that just signed in, so the
    history follows the volunteer across devices. Galaxies the account had already classified
    stay with the anonymous key: both votes were counted as different volunteers at the time.
    Returns how many classifications moved."""
    user_key = Volunteer.for_user(user_id).key
    if not anonymous_key.startswith("anon:"):
        return 0
    taken = set(Classification.objects.filter(volunteer_key=user_key)
                .values_list("workflow_id", "galaxy_id"))
    movable = [c.id for c in Classification.objects.select_for_update().filter(volunteer_key=anonymous_key)
               .only("id", "workflow_id", "galaxy_id") if (c.workflow_id, c.galaxy_id) not in taken]
    return Classification.objects.filter(id__in=movable).update(volunteer_key=user_key, user_id=user_id)


@transaction.atomic
def pick_field_guide_examples(*, workflow: Workflow, per_answer: int = 3, min_votes: int = 5,
                              min_fraction: float = 0.8, published: bool = False, replace: bool = False) -> int:
    """Attach, to every answer without examples (all answers with ``replace``), the galaxies whose
    volunteers agreed on that answer most strongly: at least ``min_fraction`` of at least
    ``min_votes`` votes on the question. The votes are this platform's (real volunteers only), or
    with ``published`` those published with the galaxy (e.g. Galaxy Zoo 2's); the caption says
    which. Returns how many examples were created."""
    tree = workflow.decision_tree
    if replace:
        FieldGuideExample.objects.filter(workflow=workflow, galaxy__isnull=False).delete()
    have = set(FieldGuideExample.objects.filter(workflow=workflow).values_list("question", "answer"))
    wanted = {a.column for q in tree.questions for a in q.answers if (q.key, a.key) not in have}
    if not wanted or per_answer < 1:
        return 0
    if published:
        tallies = ((gid, votes.get("counts") or {}, f"{votes.get('image', 'Image')}, {{share:.0%}} of {{total}} "
                    f"{votes.get('voters', 'volunteers')}") for gid, votes in published_votes(workflow_slug=workflow.slug))
    else:
        simulated = Classification.objects.filter(workflow=workflow, galaxy_id=OuterRef("galaxy_id"), is_simulated=True)
        crowd = SubjectStatus.objects.filter(workflow=workflow, classification_count__gt=0).exclude(Exists(simulated))
        tallies = ((gid, counts, "{share:.0%} of {total} volunteers here")
                   for gid, counts in crowd.values_list("galaxy_id", "vote_counts").iterator())
    best: dict[tuple[str, str], list[tuple[float, int, int, str]]] = {}
    for galaxy_id, counts, caption in tallies:
        for question in tree.summary(counts):
            if question["total"] < min_votes:
                continue
            for answer in question["answers"]:
                if answer["column"] in wanted and answer["fraction"] >= min_fraction:
                    entry = (answer["fraction"], int(question["total"]), galaxy_id, caption)
                    heap = best.setdefault((question["question"], answer["answer"]), [])
                    if len(heap) < per_answer:
                        heapq.heappush(heap, entry)
                    else:
                        heapq.heappushpop(heap, entry)
    rows = [FieldGuideExample(workflow=workflow, question=q, answer=a, galaxy_id=galaxy_id, position=i,
                              caption=caption.format(share=fraction, total=total))
            for (q, a), heap in best.items()
            for i, (fraction, total, galaxy_id, caption) in enumerate(sorted(heap, reverse=True))]
    FieldGuideExample.objects.bulk_create(rows)
    return len(rows)


@transaction.atomic
def import_field_guide_images(*, workflow: Workflow, directory: Path) -> tuple[int, list[str]]:
    """Upload example images listed in ``directory/index.csv`` (columns ``file``, ``question``,
    ``answer``; files next to it or in ``images/``) for the answers of ``workflow``'s tree. Rows naming an answer the tree does not
    have are skipped and reported as ``"row N: reason"``. Returns (created, skipped)."""
    tree = workflow.decision_tree
    index = directory / "index.csv"
    if not index.is_file():
        raise FileNotFoundError(f"{index}: no index.csv (columns file, question, answer)")
    created, skipped = 0, []
    with index.open(newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=2):
            question_key, answer_key, name = row.get("question", ""), row.get("answer", ""), row.get("file", "")
            if question_key not in tree or tree.question(question_key).answer(answer_key) is None:
                skipped.append(f"row {row_number}: {question_key}/{answer_key} is not in the tree")
                continue
            source = next((p for p in (directory / name, directory / "images" / name) if p.is_file()), None)
            if source is None:
                skipped.append(f"row {row_number}: file {name} not found")
                continue
            position = FieldGuideExample.objects.filter(workflow=workflow, question=question_key,
                                                        answer=answer_key).count()
            example = FieldGuideExample(workflow=workflow, question=question_key, answer=answer_key,
                                        position=position)
            example.image.save(f"{workflow.slug}-{source.name}", ContentFile(source.read_bytes()), save=True)
            created += 1
    return created, skipped
