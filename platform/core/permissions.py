"""Roles by permission: a view lists the model permissions each method needs, and only users
holding them pass (superusers hold all). ``is_staff`` only opens the admin site; it grants nothing here."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

READ_METHODS = ("GET", "HEAD", "OPTIONS")


class ModelPermissionRequired(BasePermission):
    """``view.required_permissions``: {"GET": ["app.view_model"], "POST": ["app.add_model"]};
    HEAD and OPTIONS need what GET needs; a method not listed is refused."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        method = "GET" if request.method in READ_METHODS else request.method
        needed = view.required_permissions.get(method)
        return needed is not None and user.has_perms(needed)
