from django.contrib import admin
from django.utils.html import format_html

from .models import Galaxy


@admin.register(Galaxy)
class GalaxyAdmin(admin.ModelAdmin):
    list_display = ["id_str", "thumbnail", "ra", "dec", "survey", "is_simulated", "created_at"]
    list_filter = ["survey", "is_simulated"]
    search_fields = ["id_str"]

    @admin.display(description="image")
    def thumbnail(self, galaxy: Galaxy) -> str:
        return format_html('<img src="{}" alt="{}" style="height:48px">', galaxy.image.url, galaxy.id_str) if galaxy.image else ""
