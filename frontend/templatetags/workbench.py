from django import template

from review.access import can_use_workbench

register = template.Library()


@register.filter
def uses_workbench(user) -> bool:
    """Whether the navigation shows the scientists' workbench to this user."""
    return can_use_workbench(user)
