"""Who may use the scientists' workbench: holders of ``review.use_workbench`` — the
``scientist`` group and superusers (roles by permission, as in core.permissions: ``is_staff``
alone grants nothing).

One check, used by every workbench page (``scientist_required``) and API
(``IsScientist``), so the rule cannot drift between them."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from rest_framework.permissions import BasePermission

from core.errors import DomainError

SCIENTIST_GROUP = "scientist"
WORKBENCH_PERMISSION = "review.use_workbench"


class UnknownUser(DomainError):
    status_code = 404
    code = "unknown_user"


def can_use_workbench(user) -> bool:
    """Scientists and superusers; never anonymous visitors or plain volunteers (Django caches
    the user's permissions for the rest of the request)."""
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(WORKBENCH_PERMISSION))


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
    group = scientist_group()
    user = users[0]
    if user.groups.filter(pk=group.pk).exists():
        return False
    user.groups.add(group)
    return True


def scientist_group() -> Group:
    """The scientist group, holding the workbench permission (re-attached if a database flush
    or an admin removed it)."""
    group, _ = Group.objects.get_or_create(name=SCIENTIST_GROUP)
    app_label, codename = WORKBENCH_PERMISSION.split(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is not None:
        group.permissions.add(permission)
    return group
