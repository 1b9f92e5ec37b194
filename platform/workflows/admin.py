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
    list_display = ["slug", "name", "version", "retirement_count", "random_fraction", "is_active"]
    list_filter = ["is_active"]
    readonly_fields = ["version", "tree_hash", "created_at", "updated_at"]
    inlines = [WorkflowVersionInline]
