from django.contrib import admin

from .models import Classification, SubjectStatus


@admin.register(SubjectStatus)
class SubjectStatusAdmin(admin.ModelAdmin):
    list_display = ["galaxy", "workflow", "classification_count", "priority", "retired_at", "retirement_reason"]
    list_filter = ["workflow", "retirement_reason"]
    search_fields = ["galaxy__id_str"]
    raw_id_fields = ["galaxy"]


@admin.register(Classification)
class ClassificationAdmin(admin.ModelAdmin):
    list_display = ["id", "galaxy", "workflow", "volunteer_key", "counted", "selection", "is_simulated", "created_at"]
    list_filter = ["workflow", "counted", "selection", "is_simulated"]
    search_fields = ["galaxy__id_str", "volunteer_key", "idempotency_key"]
    raw_id_fields = ["galaxy", "user"]
