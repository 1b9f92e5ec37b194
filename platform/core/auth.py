"""Helpers for the login lockout (django-axes)."""

from __future__ import annotations


def login_name(request, credentials: dict | None) -> str | None:
    """The account a sign-in attempt names: allauth posts `login` (email or username) and passes
    `email` or `username` to authenticate(); the admin posts `username`."""
    credentials = credentials or {}
    for key in ("username", "email", "login"):
        if credentials.get(key):
            return str(credentials[key]).lower()
    data = getattr(request, "POST", {}) if request is not None else {}
    return (data.get("login") or data.get("username") or "").lower() or None
