from django.contrib import admin

from .models import Workflow, WorkflowVersion


class WorkflowVersionInline(admin.TabularInline):
    model = WorkflowVersion
    extra = 0
    fields = ["number", "tree_hash", "created_at"]
    readonly_fields = fields
    can_delete = False


@admin.register(Workflow)
class WorkflowAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "version", "retirement_count", "random_fraction", "early_retirement",
                    "retirement_agreement", "is_active"]
    list_filter = ["is_active", "early_retirement", "retirement_agreement"]
    readonly_fields = ["version", "tree_hash", "created_at", "updated_at"]
    inlines = [WorkflowVersionInline]
