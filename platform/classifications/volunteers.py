"""Who is classifying, from a request: the signed-in user, else an id kept in the session."""

import uuid

from django.http import HttpRequest

from .services import Volunteer

SESSION_KEY = "volunteer_id"


def volunteer_from_request(request: HttpRequest) -> Volunteer:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Volunteer.for_user(user.id)
    session = request.session
    if SESSION_KEY not in session:
        session[SESSION_KEY] = uuid.uuid4().hex
    return Volunteer.anonymous(session[SESSION_KEY])
