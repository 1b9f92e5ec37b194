"""Who classifies: a signed-in user or an anonymous browser session, and how a request names one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.http import HttpRequest

SESSION_KEY = "volunteer_id"


@dataclass(frozen=True)
class Volunteer:
    """A volunteer's key is what 'one counted vote per volunteer' counts by."""

    key: str
    user_id: int | None = None

    @classmethod
    def for_user(cls, user_id: int) -> Volunteer:
        return cls(key=f"user:{user_id}", user_id=user_id)

    @classmethod
    def anonymous(cls, session_id: str) -> Volunteer:
        return cls(key=f"anon:{session_id}")


def volunteer_from_request(request: HttpRequest) -> Volunteer:
    """The signed-in user, else an id kept in the session (created on first use)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Volunteer.for_user(user.id)
    session = request.session
    if SESSION_KEY not in session:
        session[SESSION_KEY] = uuid.uuid4().hex
    return Volunteer.anonymous(session[SESSION_KEY])
