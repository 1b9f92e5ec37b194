"""Helpers for the login lockout (django-axes)."""

from __future__ import annotations

from rest_framework.throttling import BaseThrottle


def login_name(request, credentials: dict | None) -> str | None:
    """The account a sign-in attempt names: allauth posts `login` (email or username) and passes
    `email` or `username` to authenticate(); the admin posts `username`."""
    credentials = credentials or {}
    for key in ("username", "email", "login"):
        if credentials.get(key):
            return str(credentials[key]).lower()
    data = getattr(request, "POST", {}) if request is not None else {}
    return (data.get("login") or data.get("username") or "").lower() or None


def client_address(request) -> str:
    """The client's address as the request throttles see it: REMOTE_ADDR, or the address the
    NUM_PROXIES trusted proxies put in X-Forwarded-For (a client-sent header is never believed)."""
    return BaseThrottle().get_ident(request)
