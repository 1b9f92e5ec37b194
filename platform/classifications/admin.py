from django.contrib import admin
from django.utils.html import format_html, format_html_join

from .models import Classification, SubjectStatus


@admin.register(SubjectStatus)
class SubjectStatusAdmin(admin.ModelAdmin):
    """View only: tallies change through counted classifications, never by hand."""

    list_display = ["galaxy", "workflow", "classification_count", "priority", "retired_at", "retirement_reason"]
    list_filter = ["workflow", "retirement_reason"]
    search_fields = ["galaxy__id_str"]
    list_select_related = ["galaxy", "workflow"]
    fields = ["galaxy", "workflow", "classification_count", "tally", "priority", "retired_at", "retirement_reason"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="votes")
    def tally(self, status: SubjectStatus) -> str:
        rows = format_html_join(
            "", "<tr><th scope='row'>{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((question["text"] if i == 0 else "", answer["label"], answer["count"], f"{answer['fraction']:.0%}")
             for question in status.workflow.decision_tree.summary(status.vote_counts or {}) if question["total"]
             for i, answer in enumerate(question["answers"])))
        return format_html("<table><thead><tr><th scope='col'>question</th><th scope='col'>answer</th>"
                           "<th scope='col'>votes</th><th scope='col'>share</th></tr></thead><tbody>{}</tbody></table>",
                           rows)


@admin.register(Classification)
class ClassificationAdmin(admin.ModelAdmin):
    list_display = ["id", "galaxy", "workflow", "volunteer_key", "counted", "selection", "is_simulated", "created_at"]
    list_filter = ["workflow", "counted", "selection", "is_simulated"]
    search_fields = ["galaxy__id_str", "volunteer_key", "idempotency_key"]
    raw_id_fields = ["galaxy", "user"]
