from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from .models import Classification, ShadowBan, SubjectStatus
from .services import lift_shadow_ban, shadow_ban

BAN_PERMISSION = "classifications.add_shadowban"


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
    list_display = ["id", "galaxy", "workflow", "volunteer_key", "counted", "shadowed", "selection", "is_simulated",
                    "created_at"]
    list_filter = ["workflow", "counted", "shadowed", "selection", "is_simulated"]
    search_fields = ["galaxy__id_str", "volunteer_key", "idempotency_key"]
    raw_id_fields = ["galaxy", "user"]
    actions = ["shadow_ban_volunteers"]

    def has_shadow_ban_permission(self, request) -> bool:
        return request.user.has_perm(BAN_PERMISSION)

    @admin.action(description="Shadow-ban the volunteers of the selected classifications", permissions=["shadow_ban"])
    def shadow_ban_volunteers(self, request, queryset) -> None:
        keys = sorted(set(queryset.values_list("volunteer_key", flat=True)))
        withdrawn = sum(shadow_ban(volunteer_key=key, banned_by_id=request.user.pk,
                                   reason="from the classifications list").withdrawn_votes for key in keys)
        self.message_user(request, f"Shadow-banned {len(keys)} volunteer(s); {withdrawn} counted vote(s) in total "
                                   f"have left the tallies.", messages.SUCCESS)


@admin.register(ShadowBan)
class ShadowBanAdmin(admin.ModelAdmin):
    """Adding a ban runs the service (recount included); deleting one (the delete page, or the
    list's "delete selected") lifts it through lift_shadow_ban, recount included, so a ban row
    never disappears without the volunteer's votes being restored. A ban is not edited."""

    list_display = ["volunteer_key", "withdrawn_votes", "banned_by", "created_at"]
    search_fields = ["volunteer_key"]
    fields = ["volunteer_key", "reason", "withdrawn_votes", "banned_by", "created_at"]
    readonly_fields = ["withdrawn_votes", "banned_by", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change) -> None:
        ban = shadow_ban(volunteer_key=obj.volunteer_key, banned_by_id=request.user.pk, reason=obj.reason)
        obj.pk, obj.withdrawn_votes = ban.pk, ban.withdrawn_votes

    def delete_model(self, request, obj) -> None:
        lift_shadow_ban(volunteer_key=obj.volunteer_key)

    def delete_queryset(self, request, queryset) -> None:
        for volunteer_key in sorted(queryset.values_list("volunteer_key", flat=True)):
            lift_shadow_ban(volunteer_key=volunteer_key)
