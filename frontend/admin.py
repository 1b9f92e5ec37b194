from django.contrib import admin
from django.utils.html import format_html

from .models import FieldGuideExample


@admin.register(FieldGuideExample)
class FieldGuideExampleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "thumbnail", "caption", "position"]
    list_filter = ["workflow", "question"]
    search_fields = ["question", "answer", "caption", "galaxy__id_str"]
    raw_id_fields = ["galaxy"]

    @admin.display(description="image")
    def thumbnail(self, example: FieldGuideExample) -> str:
        url = example.image_url
        return format_html('<img src="{}" alt="" style="height:48px">', url) if url else ""
