"""Admin: watch runs, "Retrain" from the run list or as an action on workflows, cancel runs,
activate or roll back model versions. The workflow admin gets its Retrain actions from a
subclass registered here, so the workflows app knows nothing of retraining."""

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.errors import DomainError
from workflows.admin import WorkflowAdmin
from workflows.models import Workflow

from .models import ModelVersion, Prediction, TrainingRun
from .runs import cancel_training_run, start_training_run
from .selectors import prediction_block
from .services import activate_model_version
from .tasks import enqueue_training


def _number(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _text(value) -> str:
    """A setting's value in words: lists joined, mappings as key=value."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={_text(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    return _number(value)


def _table(head: list[str], rows, caption: str = "") -> str:
    """A small HTML table for a read-only admin field (escaped by format_html)."""
    body = format_html_join("", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),)
                                                 for row in rows))
    header = format_html_join("", "<th scope='col'>{}</th>", ((h,) for h in head))
    return format_html("<table>{}<thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
                       format_html("<caption>{}</caption>", caption) if caption else "", header, body)


def _start(request: HttpRequest, workflow: Workflow, *, full_retrain: bool,
           kind: str = TrainingRun.Kind.ENCODER) -> None:
    try:
        run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.ADMIN,
                                 triggered_by_id=request.user.pk, full_retrain=full_retrain, kind=kind)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        enqueue_training(run.pk)
        if run.kind == TrainingRun.Kind.HEAD:
            what = f"head refresh on the embeddings of model v{run.init_model_version.number}"
        elif run.full_retrain:
            what = "full retrain"
        else:
            what = f"warm start from model v{run.init_model_version.number}"
        messages.success(request, f"Queued training run {run.pk} of '{workflow.slug}' ({what}).")


@admin.action(description="Retrain now (warm start from the active model)")
def retrain_now(modeladmin, request, queryset):
    for workflow in queryset:
        _start(request, workflow, full_retrain=False)


@admin.action(description="Retrain from scratch (full retrain)")
def full_retrain_now(modeladmin, request, queryset):
    for workflow in queryset:
        _start(request, workflow, full_retrain=True)


@admin.action(description="Refresh the head now (live queue, from stored embeddings)")
def refresh_head_now(modeladmin, request, queryset):
    for workflow in queryset:
        _start(request, workflow, full_retrain=False, kind=TrainingRun.Kind.HEAD)


admin.site.unregister(Workflow)


@admin.register(Workflow)
class RetrainableWorkflowAdmin(WorkflowAdmin):
    actions = [*(WorkflowAdmin.actions or []), retrain_now, full_retrain_now, refresh_head_now]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    # Few, short columns: the list fits a 1366 px screen; the rest is on each run's page.
    list_display = ["id", "workflow", "kind", "status", "stage", "trigger", "epoch", "val_loss", "training_set",
                    "created_at"]
    list_filter = ["workflow", "kind", "status", "trigger"]
    actions = ["cancel_runs"]
    change_list_template = "admin/retraining/trainingrun/change_list.html"
    # The JSON fields (hyper-parameters, progress, history, chunks) are shown as tables.
    fieldsets = [
        (None, {"fields": ["workflow", "kind", "status", "stage", "trigger", "triggered_by", "full_retrain",
                           "init_model_version", "expert_weight", "device", "attempt", "worker"]}),
        ("Champion/challenger gate", {"fields": ["gate_table"]}),
        ("Training set", {"fields": ["snapshot_file", "snapshot_sha256", "snapshot_taken_at", "snapshot_galaxies",
                                     "snapshot_holdout_galaxies", "snapshot_last_classification_id",
                                     "snapshot_classifications", "snapshot_simulated_classifications"]}),
        ("Configuration and progress", {"fields": ["configuration_table", "progress_table", "history_table",
                                                   "chunks_table"]}),
        ("Times", {"fields": ["created_at", "started_at", "heartbeat_at", "trained_at", "finished_at"]}),
        ("Log", {"fields": ["log", "error"]}),
    ]
    readonly_fields = [*(f.name for f in TrainingRun._meta.fields), "gate_table", "configuration_table",
                       "progress_table", "history_table", "chunks_table"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="epoch")
    def epoch(self, run: TrainingRun) -> str:
        progress = run.progress or {}
        return f"{progress['epoch']}/{progress.get('epochs', '?')}" if "epoch" in progress else "-"

    @admin.display(description="val loss")
    def val_loss(self, run: TrainingRun) -> str:
        return f"{run.history[-1]['val_loss']:.3f}" if run.history else "-"

    @admin.display(description="training set")
    def training_set(self, run: TrainingRun) -> str:
        """Galaxies and votes trained on; demo seed votes come from simulated volunteers, so say how many."""
        if not run.snapshot_classifications:
            return "-"
        simulated = run.snapshot_simulated_classifications
        return (f"{run.snapshot_galaxies} gal., {run.snapshot_classifications} votes"
                + (f" ({simulated} simulated)" if simulated else ""))

    @admin.display(description="decision")
    def gate_table(self, run: TrainingRun) -> str:
        if not run.gate_decision:
            return "-"
        champion = f"v{run.gate_champion.number}" if run.gate_champion else "none"
        return _table(["", "value"], [("decision", run.get_gate_decision_display()), ("reason", run.gate_reason),
                                      ("champion", champion), ("new model's hold-out loss", _number(run.gate_challenger_loss)),
                                      ("champion's hold-out loss", _number(run.gate_champion_loss)),
                                      ("hold-out galaxies compared", run.gate_galaxies)])

    @admin.display(description="hyper-parameters")
    def configuration_table(self, run: TrainingRun) -> str:
        params = run.hyperparameters or {}
        resolved = params.get("config") or params.get("head") or {}
        overrides = params.get("overrides") or params.get("head") or {}
        rows = [(key, _text(value), "override" if key in overrides else "") for key, value in sorted(resolved.items())]
        if "preset" in params:
            rows.insert(0, ("preset", params["preset"], ""))
        return _table(["setting", "value", ""], rows) if rows else "-"

    @admin.display(description="latest progress")
    def progress_table(self, run: TrainingRun) -> str:
        return _table(["", "value"], [(k, _text(v)) for k, v in (run.progress or {}).items()]) if run.progress else "-"

    @admin.display(description="losses per epoch")
    def history_table(self, run: TrainingRun) -> str:
        return _table(["epoch", "training loss", "validation loss", "seconds"],
                      [(h.get("epoch"), _number(h.get("train_loss")), _number(h.get("val_loss")),
                        _number(h.get("seconds"), 1)) for h in run.history]) if run.history else "-"

    @admin.display(description="prediction chunks")
    def chunks_table(self, run: TrainingRun) -> str:
        if not run.prediction_chunks:
            return "-"
        done = set(run.prediction_chunks_done or [])
        return _table(["chunk", "galaxy ids", "done"],
                      [(i, f"{first} – {last}", "yes" if i in done else "no")
                       for i, (first, last) in enumerate(run.prediction_chunks)],
                      caption=f"{len(done)} of {len(run.prediction_chunks)} done")

    @admin.action(description="Cancel selected queued/running runs")
    def cancel_runs(self, request, queryset):
        for run in queryset.filter(status__in=TrainingRun.ACTIVE_STATUSES):
            cancel_training_run(run_id=run.pk)
            messages.info(request, f"Cancelled run {run.pk}.")

    def get_urls(self):
        return [path("retrain/", self.admin_site.admin_view(self.retrain_view), name="retraining_trainingrun_retrain"),
                *super().get_urls()]

    def retrain_view(self, request: HttpRequest):
        if request.method == "POST" and self.has_change_permission(request):
            workflow = get_object_or_404(Workflow, pk=request.POST.get("workflow"))
            kind = TrainingRun.Kind.HEAD if request.POST.get("kind") == TrainingRun.Kind.HEAD else TrainingRun.Kind.ENCODER
            _start(request, workflow, full_retrain=request.POST.get("full_retrain") == "on", kind=kind)
        return HttpResponseRedirect(reverse("admin:retraining_trainingrun_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "retrain_workflows": Workflow.objects.filter(is_active=True)}
        return super().changelist_view(request, extra_context=extra_context)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "is_active", "predictions_complete", "holdout_rmse", "queue_rule_summary",
                    "source", "created_at"]
    list_filter = ["workflow", "kind", "is_active"]
    actions = ["activate"]
    fields = ["workflow", "kind", "encoder", "number", "run", "checkpoint", "checkpoint_sha256", "checkpoint_bytes",
              "tree_hash", "answers", "predictions_complete", "queue_rule_summary", "queue_rule", "is_active", "activated_at", "activated_by", "created_at",
              "holdout_table", "questions_table", "training_table"]
    readonly_fields = fields

    @admin.display(description="answers predicted")
    def answers(self, version: ModelVersion) -> str:
        return f"{len(version.answer_columns)} ({', '.join(version.answer_columns[:4])}, …)"

    @admin.display(description="hold-out metrics")
    def holdout_table(self, version: ModelVersion) -> str:
        metrics = version.metrics or {}
        calibration = metrics.get("calibration") or {}
        rows = [("galaxies", metrics.get("n_galaxies", "-")), ("fraction RMSE", _number(metrics.get("rmse"))),
                ("interval coverage (fractions)", _number(calibration.get("fraction_coverage"))),
                ("interval coverage (votes)", _number(calibration.get("vote_coverage"))),
                ("nominal interval", _number(calibration.get("interval"), 2))]
        if "note" in metrics:
            rows.append(("note", metrics["note"]))
        return _table(["", "value"], rows)

    @admin.display(description="hold-out metrics per question")
    def questions_table(self, version: ModelVersion) -> str:
        questions = (version.metrics or {}).get("questions") or {}
        return _table(["question", "confident galaxies", "accuracy", "fraction RMSE", "vote coverage"],
                      [(key, q.get("n_confident"), _number(q.get("accuracy")), _number(q.get("rmse")),
                        _number(q.get("vote_coverage"))) for key, q in questions.items()]) if questions else "-"

    @admin.display(description="training's own validation")
    def training_table(self, version: ModelVersion) -> str:
        flat = {k: v for k, v in (version.train_metrics or {}).items() if not isinstance(v, dict | list)}
        return _table(["", "value"], [(k, _text(v)) for k, v in flat.items()]) if flat else "-"

    def has_add_permission(self, request):
        return False

    @admin.display(description="hold-out RMSE")
    def holdout_rmse(self, version: ModelVersion) -> str:
        rmse = version.metrics.get("rmse")
        return f"{rmse:.4f}" if rmse is not None else "-"

    @admin.display(description="trained by")
    def source(self, version: ModelVersion) -> str:
        return f"run {version.run_id}" if version.run_id else "shipped (pretrained)"

    @admin.action(description="Activate / roll back to this version (rewrites queue priorities)")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            messages.error(request, "Select exactly one model version to activate.")
            return
        chosen = queryset.get()
        previous = ModelVersion.objects.filter(workflow_id=chosen.workflow_id, is_active=True).first()
        if previous is not None and previous.pk == chosen.pk:
            messages.info(request, f"{chosen.workflow.slug} model v{chosen.number} is already the active version.")
            return
        try:
            version = activate_model_version(model_version_id=chosen.pk, activated_by_id=request.user.pk)
        except DomainError as exc:
            messages.error(request, exc.message)
            return
        verb = "Rolled back" if previous is not None and version.number < previous.number else "Switched"
        change = f"from v{previous.number} to v{version.number}" if previous is not None else f"to v{version.number}"
        messages.success(request, f"{verb} {version.workflow.slug} {change}: v{version.number} is now the active "
                                  "model and the queue follows its acquisition scores.")


@admin.register(Prediction)
class PredictionAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "model_version", "acquisition", "entropy", "created_at"]
    list_filter = ["model_version__workflow", "model_version"]
    search_fields = ["galaxy__id_str"]
    list_select_related = ["galaxy", "model_version__workflow"]
    # The arrays are shown as one labelled table (question, answer, fraction, interval), not raw.
    fields = ["galaxy", "model_version", "acquisition", "entropy", "created_at", "answer_table"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="predicted vote fractions")
    def answer_table(self, prediction: Prediction) -> str:
        block = prediction_block(prediction=prediction, tree=prediction.model_version.workflow.decision_tree)
        rows = format_html_join(
            "", "<tr><th scope='row'>{}</th><td>{}</td><td>{}</td><td>{} – {}</td><td>{}</td></tr>",
            ((question["text"] if i == 0 else "", answer["label"], f"{answer['fraction']:.0%}",
              f"{answer['lower']:.0%}", f"{answer['upper']:.0%}",
              f"{min(answer['samples']):.0%} – {max(answer['samples']):.0%}" if answer["samples"] else "-")
             for question in block["questions"] for i, answer in enumerate(question["answers"])))
        return format_html(
            "<table><caption>{}% credible intervals</caption><thead><tr><th scope='col'>question</th>"
            "<th scope='col'>answer</th><th scope='col'>fraction</th><th scope='col'>interval</th>"
            "<th scope='col'>posterior samples (min – max)</th></tr></thead>"
            "<tbody>{}</tbody></table>", round(100 * block["interval"]), rows)

    def get_object(self, request, object_id, from_field=None):
        return (Prediction.objects.select_related("galaxy", "model_version__workflow")
                .filter(pk=object_id).first())

    def change_view(self, request, object_id, form_url="", extra_context=None):
        prediction = self.get_object(request, object_id)
        title = (f"{prediction.galaxy.id_str}: prediction of {prediction.model_version.workflow.slug} "
                 f"model v{prediction.model_version.number}") if prediction else None
        return super().change_view(request, object_id, form_url, extra_context={**(extra_context or {}), "title": title})
