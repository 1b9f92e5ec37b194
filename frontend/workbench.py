"""The scientists' workbench pages: the review queue and a galaxy's dossier. Every view is
behind ``review.access.scientist_required`` (anonymous → sign in, volunteers → 403)."""

import csv
import hashlib
import json

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST

from core.errors import DomainError
from galaxies.models import Galaxy
from retraining.models import ModelVersion
from review import selectors, services
from review.access import scientist_required
from review.charts import learning_curves_svg, posterior_svg
from review.errors import InvalidQuery
from review.export import FORMATS
from review.models import Flag
from review.params import parse_int, parse_queue_query
from workflows.models import Workflow

from .selectors import default_workflow

SORT_LABELS = {"bald": "BALD (mutual information)", "entropy": "Predictive entropy",
               "disagreement": "Model–crowd disagreement",
               "changed": "Changed since the previous model version", "width": "Credible-interval width (answer)",
               "votes": "Vote count", "retired": "Retirement time"}


@scientist_required
def home(request: HttpRequest) -> HttpResponse:
    workflow = default_workflow()
    if workflow is None:
        raise Http404("no active workflow")
    return redirect("workbench-queue", slug=workflow.slug)


@scientist_required
def queue(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug)
    context = {"workflow": workflow, "workflows": Workflow.objects.all(), "params": request.GET,
               "sort_labels": SORT_LABELS, "flag_kinds": Flag.Kind.choices, "error": None, "page": None,
               "answer_columns": list(workflow.decision_tree.answer_columns)}
    try:
        services.ensure_review_scores(workflow=workflow)
        query, separations = parse_queue_query(request.GET)
        page = selectors.review_queue(workflow=workflow, query=query)
    except DomainError as exc:
        context["error"] = exc
        return render(request, "frontend/workbench/queue.html", context, status=exc.status_code)
    for item in page.items:
        item["separation_arcmin"] = separations[item["galaxy_id"]] * 60 if separations else None
        item["url"] = reverse("workbench-dossier", args=[workflow.slug, item["id_str"]])
    base = request.GET.copy()
    base.pop("page", None)
    context.update(page=page, query=query, base_query=base.urlencode(),
                   highlighted=list(query.minimums) + list(query.maximums) + ([query.answer] if query.answer else []))
    return render(request, "frontend/workbench/queue.html", context)


@scientist_required
@ensure_csrf_cookie
def dossier(request: HttpRequest, slug: str, id_str: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug)
    galaxy = get_object_or_404(Galaxy, id_str=id_str)
    neighbours, neighbours_error = None, ""
    try:
        k = parse_int(request.GET, "k", settings.REVIEW_NEIGHBOURS, low=1, high=settings.REVIEW_MAX_NEIGHBOURS)
        neighbours = selectors.similar_galaxies(workflow=workflow, galaxy=galaxy, k=k)
    except DomainError as exc:
        neighbours_error = exc.message
    return render(request, "frontend/workbench/dossier.html", {
        "dossier": selectors.galaxy_dossier(workflow=workflow, galaxy=galaxy), "workflow": workflow,
        "galaxy": galaxy, "flag_kinds": Flag.Kind.choices, "neighbours": neighbours,
        "neighbours_error": neighbours_error})


@scientist_required
def posterior_chart(request: HttpRequest, slug: str, id_str: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug)
    galaxy = get_object_or_404(Galaxy, id_str=id_str)
    dossier = selectors.galaxy_dossier(workflow=workflow, galaxy=galaxy, classifications_limit=0)
    prediction = dossier["active_prediction"]
    tally = json.dumps([[a["count"] for a in q["answers"]] for q in dossier["votes"]])
    key = (f"posterior-svg:{workflow.pk}:{workflow.tree_hash}:{galaxy.pk}:"
           f"{prediction['model_version_id'] if prediction else 0}:{hashlib.sha1(tally.encode()).hexdigest()}")
    svg = posterior_svg(cache_key=key, prediction=prediction, votes=dossier["votes"])
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=300"
    return response


def _chosen(versions: list[dict], raw: str | None, default: dict | None) -> dict | None:
    by_number = {str(v["number"]): v for v in versions}
    return by_number.get(raw or "", default)


@scientist_required
def models(request: HttpRequest, slug: str) -> HttpResponse:
    """The model dashboard: every version's hold-out figures, two of them side by side."""
    workflow = get_object_or_404(Workflow, slug=slug)
    versions = selectors.model_summaries(workflow=workflow)
    active = next((v for v in versions if v["is_active"]), versions[0] if versions else None)
    other = next((v for v in versions if v is not active), None)
    left = _chosen(versions, request.GET.get("a"), active)
    right = _chosen(versions, request.GET.get("b"), other)
    rows = []
    if left:
        def by_question(version: dict | None, part: str) -> dict:
            questions = (version or {}).get("questions", []) if part == "holdout" else \
                (version or {}).get("expert", {}).get("questions", [])
            return {q["question"]: q for q in questions}

        parts = {(side, part): by_question(version, part) for side, version in (("l", left), ("r", right))
                 for part in ("holdout", "expert")}
        keys = [*parts["l", "expert"], *(k for k in parts["l", "holdout"] if k not in parts["l", "expert"])]
        missing = {"n_confident": None}
        rows = [{"question": key, "left": parts["l", "holdout"].get(key) or missing,
                 "right": parts["r", "holdout"].get(key) or missing, "expert_left": parts["l", "expert"].get(key) or {},
                 "expert_right": parts["r", "expert"].get(key) or {}} for key in keys]
    return render(request, "frontend/workbench/models.html", {
        "workflow": workflow, "versions": versions, "left": left, "right": right, "rows": rows,
        "confusions": _confusions(left),
        "agreement": selectors.volunteer_agreement(workflow=workflow),
        "awaiting": [v for v in versions if v["activatable"] and (v["gate"] or {}).get("decision") == "awaiting_review"]})


def _confusions(version: dict | None) -> list[dict]:
    """Per question of one version, its hold-out confusion matrix as table rows: each confident
    volunteer answer (the majority of ≥ 80 %) against the model's top answer."""
    out = []
    for q in (version or {}).get("questions", []):
        matrix, answers = q.get("confusion"), q.get("answers")
        if matrix and answers and any(any(row) for row in matrix):
            out.append({"question": q["question"], "answers": answers,
                        "rows": [{"truth": answer, "counts": row} for answer, row in zip(answers, matrix, strict=True)]})
    return out


MODEL_CSV_COLUMNS = ("version", "kind", "is_active", "question", "n_confident", "accuracy", "rmse",
                     "fraction_coverage", "vote_coverage", "expert_accuracy", "expert_n")


@scientist_required
def models_csv(request: HttpRequest, slug: str) -> HttpResponse:
    """The dashboard's per-question figures of every version as CSV (one row per version and
    question; the JSON API has the rest)."""
    workflow = get_object_or_404(Workflow, slug=slug)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{workflow.slug}-models.csv"'
    writer = csv.writer(response)
    writer.writerow(MODEL_CSV_COLUMNS)
    for version in selectors.model_summaries(workflow=workflow):
        expert = {q["question"]: q for q in version["expert"]["questions"]}
        for q in version["questions"]:
            gold = expert.get(q["question"], {})
            writer.writerow([version["number"], version["kind"], version["is_active"], q["question"], q["n_confident"],
                             q["accuracy"], q["rmse"], q["fraction_coverage"], q["vote_coverage"],
                             gold.get("accuracy"), gold.get("n", 0)])
    return response


@scientist_required
@require_POST
def activate_version(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    """The dashboard's Activate button (a form POST with the CSRF token)."""
    workflow = get_object_or_404(Workflow, slug=slug)
    try:
        version = services.activate_version(workflow=workflow, number=number, user_id=request.user.pk)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Model v{version.number} is now active: the queue follows its scores.")
    return redirect("workbench-models", slug=workflow.slug)


@scientist_required
def learning_curves(request: HttpRequest, slug: str) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug)
    versions = {str(v["number"]): v for v in selectors.model_summaries(workflow=workflow)}
    chosen = [versions[n] for n in request.GET.getlist("v") if n in versions][:4]
    curves = {f"v{v['number']}": v["history"] for v in chosen}
    key = "learning-curves:" + hashlib.sha1(json.dumps(curves, sort_keys=True).encode()).hexdigest()
    return HttpResponse(learning_curves_svg(cache_key=key, curves=curves), content_type="image/svg+xml")


@scientist_required
def exports(request: HttpRequest, slug: str) -> HttpResponse:
    """Request a catalogue export (a worker writes it) and follow it to its download link; the
    page reloads itself every few seconds while one is unfinished."""
    workflow = get_object_or_404(Workflow, slug=slug)
    error = None
    if request.method == "POST":
        try:
            raw = request.POST.get("model_version") or None
            if raw is not None and not raw.isdigit():
                raise InvalidQuery("model_version must be a version number", field="model_version")
            services.request_export(workflow=workflow, fmt=request.POST.get("format", ""), user_id=request.user.pk,
                                    model_version_number=int(raw) if raw else None)
        except DomainError as exc:
            error = exc
        else:
            return redirect("workbench-exports", slug=workflow.slug)
    jobs = list(selectors.export_jobs(workflow=workflow)[:20])
    return render(request, "frontend/workbench/exports.html", {
        "workflow": workflow, "jobs": jobs, "formats": FORMATS, "error": error,
        "versions": ModelVersion.objects.filter(workflow=workflow).order_by("-number"),
        "polling": any(not job.is_finished for job in jobs)}, status=error.status_code if error else 200)
