"""Who classifies: a signed-in user, or an anonymous volunteer holding an identity the server
issued (a signed token), and how a request names one.

An anonymous identity is a random id signed with the site's key (django.core.signing), kept in
an HttpOnly cookie (or sent as ``X-Volunteer`` by scripts). Only ``POST /api/volunteers/anonymous/``
issues one, rate-limited per address on the shared cache, so a client cannot become a new
volunteer per request (issue 15: 40 cookie-less posts retired a galaxy). Checking a token is
one HMAC, no database round trip (median cost: docs/reliability.md)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

COOKIE_NAME = "gz_volunteer"
HEADER = "HTTP_X_VOLUNTEER"
_SALT = "classifications.volunteer"


@dataclass(frozen=True)
class Volunteer:
    """A volunteer's key is what 'one counted vote per volunteer' counts by."""

    key: str
    user_id: int | None = None

    @classmethod
    def for_user(cls, user_id: int) -> Volunteer:
        return cls(key=f"user:{user_id}", user_id=user_id)

    @classmethod
    def anonymous(cls, anonymous_id: str) -> Volunteer:
        return cls(key=f"anon:{anonymous_id}")


def token_for(anonymous_id: str) -> str:
    """The signed token naming this anonymous id (issued by the API; tests and benchmarks make their own)."""
    return signing.TimestampSigner(salt=_SALT).sign(anonymous_id)


def issue_anonymous() -> tuple[Volunteer, str]:
    """A new anonymous identity and its signed token."""
    anonymous_id = secrets.token_hex(16)
    return Volunteer.anonymous(anonymous_id), token_for(anonymous_id)


def anonymous_from_token(token: str) -> Volunteer | None:
    """The identity a token names, or None when it is forged, altered or expired."""
    try:
        anonymous_id = signing.TimestampSigner(salt=_SALT).unsign(token, max_age=settings.VOLUNTEER_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    return Volunteer.anonymous(anonymous_id)


def anonymous_volunteer(request: HttpRequest) -> Volunteer | None:
    """The anonymous identity the request carries (cookie, else header), whoever is signed in."""
    token = request.COOKIES.get(COOKIE_NAME) or request.META.get(HEADER)
    return anonymous_from_token(token) if token else None


def volunteer_from_request(request: HttpRequest) -> Volunteer | None:
    """The signed-in user, else the anonymous identity the request carries; None without one."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Volunteer.for_user(user.id)
    return anonymous_volunteer(request)


def set_identity_cookie(response: HttpResponse, token: str) -> None:
    response.set_cookie(COOKIE_NAME, token, max_age=settings.VOLUNTEER_TOKEN_MAX_AGE, httponly=True,
                        samesite="Lax", secure=settings.SESSION_COOKIE_SECURE)
