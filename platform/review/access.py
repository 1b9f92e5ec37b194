"""Who may use the scientists' workbench: members of the ``scientist`` group and admins.

One check, used by every workbench page (``scientist_required``) and API
(``IsScientist``), so the rule cannot drift between them."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from rest_framework.permissions import BasePermission

from core.errors import DomainError

SCIENTIST_GROUP = "scientist"


class UnknownUser(DomainError):
    status_code = 404
    code = "unknown_user"


def is_admin(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and (user.is_superuser or user.is_staff))


def can_use_workbench(user) -> bool:
    """Scientists and admins; never anonymous visitors or plain volunteers. The group lookup
    is cached on the user object for the rest of the request."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    if is_admin(user):
        return True
    cached = getattr(user, "_is_scientist", None)
    if cached is None:
        cached = user.groups.filter(name=SCIENTIST_GROUP).exists()
        user._is_scientist = cached
    return cached


class IsScientist(BasePermission):
    """DRF: 403 JSON for anonymous visitors and volunteers."""

    message = "The workbench is for scientists and admins."

    def has_permission(self, request, view) -> bool:
        return can_use_workbench(request.user)


def scientist_required(view: Callable) -> Callable:
    """Pages: anonymous visitors are sent to sign in; signed-in volunteers get 403 (sending
    them to the sign-in page they just passed would loop)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_use_workbench(request.user):
            raise PermissionDenied("The workbench is for scientists and admins.")
        return view(request, *args, **kwargs)

    return wrapper


@transaction.atomic
def grant_scientist(*, email: str) -> bool:
    """Add the account with this email (case-insensitive) to the scientist group; returns
    False when it was already a member."""
    users = list(get_user_model().objects.filter(email__iexact=email.strip()))
    if not users:
        raise UnknownUser(f"no account has the email {email!r}", field="email")
    if len(users) > 1:
        raise UnknownUser(f"{len(users)} accounts share the email {email!r}; grant it in the admin",
                          field="email")
    group, _ = Group.objects.get_or_create(name=SCIENTIST_GROUP)
    user = users[0]
    if user.groups.filter(pk=group.pk).exists():
        return False
    user.groups.add(group)
    return True
