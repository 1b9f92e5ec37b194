"""Reads of the workbench: the review queue, a galaxy's dossier, expert labels and flags."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Exists, F, FilteredRelation, FloatField, Max, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from classifications.models import Classification, SubjectStatus
from core.storage import local_copy
from galaxies.models import Galaxy
from galaxies.selectors import cone_search
from retraining.models import ModelVersion, Prediction
from retraining.selectors import active_model_version, embedding_chunks, galaxy_embedding, prediction_block
from workflows.models import Workflow

from . import vectors
from .errors import InvalidQuery, NoActiveModel, NotEmbedded
from .models import (
    EmbeddingIndex,
    ExpertClassification,
    ExportJob,
    Flag,
    IntervalExtreme,
    RetirementOverride,
    ReviewScore,
)

SORTS = ("bald", "entropy", "disagreement", "changed", "width", "votes", "retired")
# Sort keys that are never NULL in the rows sorted (disagreement and changed are filtered to
# their partial index's rows; every galaxy has a status row in every workflow).
NOT_NULL_SORTS = ("bald", "entropy", "disagreement", "changed", "votes", "width")
FLAG_FILTERS = ("any", "none", *Flag.Kind.values)
EXPERT_FILTERS = ("labelled", "unlabelled")


@dataclass(frozen=True)
class QueueQuery:
    """A parsed review-queue request. Ranges are ``{answer column: bound}`` on the active
    model's mean fraction; ``galaxy_ids`` restricts to a cone or a name search."""

    sort: str = "bald"
    descending: bool = True
    answer: str | None = None
    minimums: dict[str, float] = field(default_factory=dict)
    maximums: dict[str, float] = field(default_factory=dict)
    survey: str | None = None
    flag: str | None = None
    expert: str | None = None
    retired: bool | None = None
    galaxy_ids: tuple[int, ...] | None = None
    page: int = 1
    page_size: int = 48


@dataclass(frozen=True)
class QueuePage:
    model_version: ModelVersion
    items: list[dict[str, Any]]
    page: int
    page_size: int
    has_next: bool


def _fraction(index: int, name: str = "fractions") -> Cast:
    return Cast(KeyTextTransform(str(index), f"prediction__{name}"), FloatField())


def review_queue(*, workflow: Workflow, query: QueueQuery) -> QueuePage:
    """One page of the active model's review scores joined with the votes, the prediction's
    answers in play and the flag/expert state. No total count: counting a filtered catalogue
    of a million galaxies is a full scan, a next-page probe (one row more) is not."""
    version = active_model_version(workflow=workflow)
    if version is None:
        raise NoActiveModel(f"{workflow.slug} has no active model yet: train one first", field="workflow")
    column_index = {column: i for i, column in enumerate(version.answer_columns)}
    wanted = list(dict.fromkeys([*query.minimums, *query.maximums, *([query.answer] if query.answer else [])]))
    for column in wanted:
        if column not in column_index:
            raise InvalidQuery(f"'{column}' is not an answer the active model predicts", field="answer")
    if query.sort == "width" and not query.answer:
        raise InvalidQuery("sorting by interval width needs an answer (answer=question_answer)", field="answer")

    scores = (ReviewScore.objects.filter(model_version=version)
              .annotate(status=FilteredRelation("galaxy__subject_statuses",
                                                condition=Q(galaxy__subject_statuses__workflow=workflow)),
                        prediction=FilteredRelation("galaxy__predictions",
                                                    condition=Q(galaxy__predictions__model_version=version)))
              .annotate(votes=F("status__classification_count"), retired_at=F("status__retired_at"),
                        retirement_reason=F("status__retirement_reason"),
                        open_flags=Exists(Flag.objects.filter(galaxy=OuterRef("galaxy_id"), resolved_at__isnull=True)),
                        expert_labelled=Exists(ExpertClassification.objects.filter(
                            galaxy=OuterRef("galaxy_id"), workflow=workflow))))
    for column in wanted:
        i = column_index[column]
        scores = scores.annotate(**{f"f{i}": _fraction(i), f"lo{i}": _fraction(i, "lower"),
                                    f"hi{i}": _fraction(i, "upper")})
    for column, bound in query.minimums.items():
        scores = scores.filter(**{f"f{column_index[column]}__gte": bound})
    for column, bound in query.maximums.items():
        scores = scores.filter(**{f"f{column_index[column]}__lte": bound})
    if query.survey:
        scores = scores.filter(galaxy__survey=query.survey)
    if query.flag == "any":
        scores = scores.filter(open_flags=True)
    elif query.flag == "none":
        scores = scores.filter(open_flags=False)
    elif query.flag:
        scores = scores.filter(Exists(Flag.objects.filter(galaxy=OuterRef("galaxy_id"), kind=query.flag,
                                                          resolved_at__isnull=True)))
    if query.expert:
        scores = scores.filter(expert_labelled=query.expert == "labelled")
    if query.retired is not None:
        scores = scores.filter(retired_at__isnull=not query.retired)
    if query.galaxy_ids is not None:
        scores = scores.filter(galaxy_id__in=list(query.galaxy_ids))
    if query.sort in ("disagreement", "changed"):
        # Only some galaxies have the score; the partial index holds exactly those.
        scores = scores.filter(**{f"{query.sort}__isnull": False})
    if query.sort == "votes":
        scores = scores.filter(votes__isnull=False)  # an inner join: the status index can lead
    offset = (query.page - 1) * query.page_size
    rows = None
    if query.sort == "width":
        rows = _widest_from_extremes(scores, version=version, answer=column_index[query.answer], query=query)
        i = column_index[query.answer]
        scores = scores.annotate(width=F(f"hi{i}") - F(f"lo{i}"))
    if rows is None:
        rows = list(_ordered(scores, query)[offset:offset + query.page_size + 1])
    items = [_queue_item(row, wanted=wanted, column_index=column_index) for row in rows[:query.page_size]]
    return QueuePage(model_version=version, items=items, page=query.page, page_size=query.page_size,
                     has_next=len(rows) > query.page_size)


def _ordered(scores: QuerySet[ReviewScore], query: QueueQuery) -> QuerySet[ReviewScore]:
    """Sorted by the query's key, galaxy id breaking ties in the same direction, so each sort
    reads its index in one direction. Plain ASC/DESC where the key is never NULL: NULLS LAST
    would not match the index and PostgreSQL would sort everything."""
    key = F({"bald": "acquisition", "votes": "votes", "retired": "retired_at"}.get(query.sort, query.sort))
    nulls = {} if query.sort in NOT_NULL_SORTS else {"nulls_last": True}
    order = key.desc(**nulls) if query.descending else key.asc(**nulls)
    tiebreak = F("galaxy_id").desc() if query.descending else F("galaxy_id").asc()
    return scores.order_by(order, tiebreak).select_related("galaxy")


def _widest_from_extremes(scores: QuerySet[ReviewScore], *, version: ModelVersion, answer: int,
                          query: QueueQuery) -> list[ReviewScore] | None:
    """The page sorted by one answer's interval width, read through the stored extremes (an
    index walk), or None when they hold too few rows for it: every galaxy outside them is less
    extreme than all inside, so a full page (plus the next-page probe) found there is exact."""
    end = IntervalExtreme.End.WIDEST if query.descending else IntervalExtreme.End.NARROWEST
    condition = Q(galaxy__interval_extremes__model_version=version, galaxy__interval_extremes__answer=answer,
                  galaxy__interval_extremes__end=end)
    stored = (scores.annotate(extreme=FilteredRelation("galaxy__interval_extremes", condition=condition))
              .filter(extreme__isnull=False).annotate(width=F("extreme__width")))
    offset = (query.page - 1) * query.page_size
    rows = list(_ordered(stored, query)[offset:offset + query.page_size + 1])
    return rows if len(rows) > query.page_size else None


def _queue_item(row: ReviewScore, *, wanted: list[str], column_index: dict[str, int]) -> dict[str, Any]:
    galaxy = row.galaxy
    return {
        "galaxy_id": galaxy.pk, "id_str": galaxy.id_str, "ra": galaxy.ra, "dec": galaxy.dec, "survey": galaxy.survey,
        "image_url": galaxy.image.url if galaxy.image else None,
        "bald": row.acquisition, "entropy": row.entropy, "disagreement": row.disagreement, "changed": row.changed,
        "votes": row.votes or 0, "retired": row.retired_at is not None, "retirement_reason": row.retirement_reason or "",
        "open_flags": row.open_flags, "expert_labelled": row.expert_labelled,
        "answers": {column: {"fraction": getattr(row, f"f{column_index[column]}"),
                             "lower": getattr(row, f"lo{column_index[column]}"),
                             "upper": getattr(row, f"hi{column_index[column]}")} for column in wanted},
    }


def find_galaxies(*, text: str, limit: int = 50) -> list[int]:
    """Galaxy ids by exact id_str or numeric id, else by id_str prefix (index-friendly)."""
    text = text.strip()
    if not text:
        return []
    exact = Q(id_str=text) | (Q(pk=int(text)) if text.isdigit() else Q())
    found = list(Galaxy.objects.filter(exact).values_list("id", flat=True)[:limit])
    return found or list(Galaxy.objects.filter(id_str__startswith=text).order_by("id_str")
                         .values_list("id", flat=True)[:limit])


def cone(*, ra: float, dec: float, radius_deg: float) -> list[tuple[int, float]]:
    """Galaxies within ``radius_deg`` of (ra, dec); RA 360 is RA 0."""
    if not (0 <= ra <= 360):
        raise InvalidQuery("ra must be in [0, 360] degrees", field="ra")
    if not (-90 <= dec <= 90):
        raise InvalidQuery("dec must be in [-90, 90] degrees", field="dec")
    if not (0 <= radius_deg <= settings.REVIEW_MAX_CONE_DEG):
        raise InvalidQuery(f"radius must be in [0, {settings.REVIEW_MAX_CONE_DEG}] degrees", field="radius")
    return cone_search(ra=ra % 360, dec=dec, radius_deg=radius_deg)


def pseudonym(volunteer_key: str) -> str:
    """A stable name for a volunteer that does not reveal the key (a keyed hash: the same
    volunteer reads the same everywhere; the key cannot be recovered or guessed from it)."""
    digest = hmac.new(settings.SECRET_KEY.encode(), volunteer_key.encode(), hashlib.sha256).hexdigest()
    return f"volunteer-{digest[:10]}"


def galaxy_dossier(*, workflow: Workflow, galaxy: Galaxy, classifications_limit: int = 200) -> dict[str, Any]:
    """Everything the dossier page shows about one galaxy in one workflow."""
    tree = workflow.decision_tree
    status = SubjectStatus.objects.filter(workflow=workflow, galaxy=galaxy).first()
    predictions = (Prediction.objects.filter(galaxy=galaxy, model_version__workflow=workflow)
                   .select_related("model_version").order_by("-model_version__number"))
    blocks = [{**prediction_block(prediction=p, tree=tree), "active": p.model_version.is_active}
              for p in predictions if p.model_version.tree_hash == workflow.tree_hash]
    classifications = (Classification.objects.filter(workflow=workflow, galaxy=galaxy)
                       .order_by("-created_at")[:classifications_limit])
    return {
        "galaxy": galaxy, "workflow": workflow,
        "classification_count": status.classification_count if status else 0,
        "retired_at": status.retired_at if status else None,
        "retirement_reason": status.retirement_reason if status else "",
        "votes": tree.summary(status.vote_counts if status else {}),
        "predictions": blocks,
        "active_prediction": next((b for b in blocks if b["active"]), None),
        "classifications": [{"pseudonym": pseudonym(c.volunteer_key), "annotations": c.annotations,
                             "counted": c.counted, "is_simulated": c.is_simulated, "created_at": c.created_at,
                             "workflow_version": c.workflow_version} for c in classifications],
        "expert_classifications": list(expert_classifications(workflow=workflow, galaxy=galaxy)),
        "flags": list(flags(galaxy=galaxy)),
        "overrides": list(RetirementOverride.objects.filter(workflow=workflow, galaxy=galaxy)
                          .select_related("created_by")),
    }


def expert_classifications(*, workflow: Workflow, galaxy: Galaxy | None = None) -> QuerySet[ExpertClassification]:
    labels = ExpertClassification.objects.filter(workflow=workflow).select_related("expert", "galaxy")
    return labels.filter(galaxy=galaxy) if galaxy is not None else labels


def flags(*, galaxy: Galaxy | None = None, open_only: bool = False) -> QuerySet[Flag]:
    result = Flag.objects.select_related("created_by", "resolved_by", "galaxy")
    if galaxy is not None:
        result = result.filter(galaxy=galaxy)
    return result.filter(resolved_at__isnull=True) if open_only else result


def model_summaries(*, workflow: Workflow) -> list[dict[str, Any]]:
    """Every model version of the workflow, newest first, with its hold-out headline figures
    and its run's per-epoch losses (the dashboard's table, curves and JSON)."""
    out = []
    tree = workflow.decision_tree
    versions = (ModelVersion.objects.filter(workflow=workflow)
                .select_related("run__gate_champion", "activated_by").order_by("-number"))
    for version in versions:
        metrics = version.metrics or {}
        per_question = metrics.get("questions") or {}
        calibration = metrics.get("calibration") or {}
        out.append({
            "id": version.pk, "number": version.number, "is_active": version.is_active,
            "created_at": version.created_at, "activated_at": version.activated_at,
            "tree_matches": version.tree_hash == workflow.tree_hash,
            "n_galaxies": metrics.get("n_galaxies"), "rmse": metrics.get("rmse"),
            "fraction_coverage": calibration.get("fraction_coverage"), "vote_coverage": calibration.get("vote_coverage"),
            "interval": calibration.get("interval"),
            "questions": [{"question": key, **{k: per_question[key].get(k) for k in (
                "n_confident", "accuracy", "rmse", "fraction_coverage", "vote_coverage", "confusion", "answers")}}
                for key in _tree_order(per_question, tree)],
            "history": list(version.run.history) if version.run else [],
            "run_id": version.run_id, "kind": version.kind,
            "activated_by": version.activated_by.get_username() if version.activated_by else None,
            "activatable": (not version.is_active and version.predictions_complete
                            and version.tree_hash == workflow.tree_hash),
            "gate": _gate(version.run),
            "expert": expert_metrics(workflow=workflow, version=version),
        })
    return out


def _gate(run) -> dict[str, Any] | None:
    """The champion/challenger decision recorded on the version's run (None: no run, or it
    finished before the gate existed)."""
    if run is None or not run.gate_decision:
        return None
    return {"decision": run.gate_decision, "reason": run.gate_reason,
            "champion": run.gate_champion.number if run.gate_champion else None,
            "challenger_loss": run.gate_challenger_loss, "champion_loss": run.gate_champion_loss,
            "n_galaxies": run.gate_galaxies}


def _tree_order(per_question: dict[str, Any], tree) -> list[str]:
    """Question keys in the tree's order (PostgreSQL's jsonb does not keep a dict's order),
    then any the tree no longer has."""
    known = [q.key for q in tree.questions if q.key in per_question]
    return known + sorted(set(per_question) - set(known))


def _expert_answers(workflow: Workflow) -> list[tuple[int, dict[str, str]]]:
    """Every expert label of the workflow as ``(galaxy id, {question: answer})``, keeping only
    answers the current tree still has (a label made on an older tree may name others)."""
    tree = workflow.decision_tree
    known = {q.key: set(q.answer_keys) for q in tree.questions}
    out = []
    for galaxy_id, label in (ExpertClassification.objects.filter(workflow=workflow).order_by("id")
                                   .values_list("galaxy_id", "annotations")):
        answers = {a["question"]: a["answer"] for a in label
                   if a.get("answer") in known.get(a.get("question"), ())}
        out.append((galaxy_id, answers))
    return out


def expert_vote_counts(workflow: Workflow) -> dict[int, dict[str, int]]:
    """Per galaxy, one vote per answer of each expert label, by answer column: what training
    adds (times the run's ``expert_weight``) through ``retraining.vote_sources``."""
    out: dict[int, dict[str, int]] = {}
    for galaxy_id, answers in _expert_answers(workflow):
        counts = out.setdefault(galaxy_id, {})
        for question, answer in answers.items():
            column = f"{question}_{answer}"
            counts[column] = counts.get(column, 0) + 1
    return out


def _labels_state(workflow: Workflow) -> str:
    """Changes whenever an expert label is added, revised or removed (the cache keys' part)."""
    state = ExpertClassification.objects.filter(workflow=workflow).aggregate(n=Count("id"), last=Max("updated_at"),
                                                                              top=Max("id"))
    return f"{state['n']}:{state['top']}:{state['last'].isoformat() if state['last'] else ''}"


def expert_metrics(*, workflow: Workflow, version: ModelVersion) -> dict[str, Any]:
    """The gold-standard evaluation of one version: per question, the share of expert answers
    that are the version's top predicted answer (mean fraction), over the expert-labelled
    galaxies it predicted, with n. From the stored predictions (no model is run), cached until
    a label changes (a version's predictions never change)."""
    key = f"expert-metrics:{version.pk}:{workflow.tree_hash}:{_labels_state(workflow)}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    tree = workflow.decision_tree
    labels = _expert_answers(workflow)
    index = {column: i for i, column in enumerate(version.answer_columns)}
    fractions = dict(Prediction.objects.filter(model_version=version, galaxy_id__in={g for g, _ in labels})
                     .values_list("galaxy_id", "fractions"))
    questions = []
    for question in tree.questions:
        columns = [index.get(a.column) for a in question.answers]
        hits = n = 0
        if version.tree_hash == workflow.tree_hash and None not in columns:
            for galaxy_id, answers in labels:
                if question.key in answers and galaxy_id in fractions:
                    predicted = [fractions[galaxy_id][i] for i in columns]
                    top = question.answers[max(range(len(predicted)), key=predicted.__getitem__)].key
                    hits, n = hits + (top == answers[question.key]), n + 1
        questions.append({"question": question.key, "n": n, "accuracy": hits / n if n else None})
    total = sum(q["n"] for q in questions)
    result = {"n_labels": len(labels), "n_answers": total,
              "accuracy": sum((q["accuracy"] or 0) * q["n"] for q in questions) / total if total else None,
              "questions": questions}
    cache.set(key, result, 3600)
    return result


def volunteer_agreement(*, workflow: Workflow) -> list[dict[str, Any]]:
    """Per question, over the expert answers whose galaxy has volunteer votes on that question:
    the share where the volunteers' majority answer is the expert's (aggregate only; a tie has
    no majority and counts as a disagreement), with n."""
    tree = workflow.decision_tree
    labels = _expert_answers(workflow)
    tallies = dict(SubjectStatus.objects.filter(workflow=workflow, galaxy_id__in={g for g, _ in labels})
                   .values_list("galaxy_id", "vote_counts"))
    out = []
    for question in tree.questions:
        agree = n = 0
        for galaxy_id, answers in labels:
            counts = [(tallies.get(galaxy_id) or {}).get(a.column, 0) or 0 for a in question.answers]
            if question.key not in answers or not sum(counts):
                continue
            best = max(counts)
            majority = [a.key for a, c in zip(question.answers, counts) if c == best]
            agree, n = agree + (majority == [answers[question.key]]), n + 1
        out.append({"question": question.key, "text": question.text, "n": n, "agreement": agree / n if n else None})
    return out


@dataclass(frozen=True)
class Neighbours:
    model_version: ModelVersion
    method: str  # "exact" or "ivf" (the built index), or "scan" (no index yet)
    items: list[dict[str, Any]]


_LOADED_INDEXES: dict[str, Any] = {}


def _loaded_index(built: EmbeddingIndex):
    """The faiss index, read once per process from a verified local copy of the stored file
    (hundreds of MB at 1M galaxies: never per request); the two newest are kept."""
    if built.sha256 not in _LOADED_INDEXES:
        path = local_copy(built.file.name, sha256=built.sha256)
        while len(_LOADED_INDEXES) >= 2:
            _LOADED_INDEXES.pop(next(iter(_LOADED_INDEXES)))
        _LOADED_INDEXES[built.sha256] = vectors.from_bytes(path.read_bytes())
    return _LOADED_INDEXES[built.sha256]


def similar_galaxies(*, workflow: Workflow, galaxy: Galaxy, k: int) -> Neighbours:
    """The ``k`` galaxies nearest to this one in the active model's encoder embedding (cosine
    similarity), most similar first, itself left out. Through the encoder's index once built;
    before, an exact scan of every stored embedding (reads N × 512 B: ~1 s per 100k galaxies)."""
    version = active_model_version(workflow=workflow)
    if version is None:
        raise NoActiveModel(f"{workflow.slug} has no active model yet: train one first", field="workflow")
    encoder = version.encoder_version
    query = galaxy_embedding(model_version_id=encoder.pk, galaxy_id=galaxy.pk)
    if query is None:
        raise NotEmbedded(f"{galaxy.id_str} has no embedding from model v{encoder.number}", field="id_str")
    built = EmbeddingIndex.objects.filter(encoder_version=encoder).first()
    if built is not None:
        found = vectors.search(_loaded_index(built), query, k=k + 1, nprobe=settings.REVIEW_INDEX_NPROBE)
        method = built.kind
    else:
        found = vectors.exact_search(embedding_chunks(model_version_id=encoder.pk), query, k=k + 1)
        method = "scan"
    found = [(gid, similarity) for gid, similarity in found if gid != galaxy.pk][:k]
    galaxies = Galaxy.objects.in_bulk([gid for gid, _ in found])
    items = [{"galaxy_id": gid, "id_str": galaxies[gid].id_str, "ra": galaxies[gid].ra, "dec": galaxies[gid].dec,
              "image_url": galaxies[gid].image.url if galaxies[gid].image else None, "similarity": similarity}
             for gid, similarity in found if gid in galaxies]
    return Neighbours(model_version=version, method=method, items=items)


def export_jobs(*, workflow: Workflow | None = None) -> QuerySet[ExportJob]:
    jobs = ExportJob.objects.select_related("workflow", "model_version", "requested_by")
    return jobs.filter(workflow=workflow) if workflow is not None else jobs
