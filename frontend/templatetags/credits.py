"""The footer credits the image sources of the galaxies on this site, not a fixed list."""

from django import template
from django.core.cache import cache

from frontend.selectors import image_sources

register = template.Library()
CACHE_SECONDS = 60  # one DISTINCT over the galaxies a minute, not one per page view


@register.simple_tag
def image_credits() -> str:
    sources = cache.get("frontend:image-sources")
    if sources is None:
        sources = image_sources()
        cache.set("frontend:image-sources", sources, CACHE_SECONDS)
    return "; ".join(sources) if sources else "no galaxies loaded yet"
