"""Keep an anonymous volunteer's history when they sign up or sign in."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from classifications.volunteers import SESSION_KEY, Volunteer

from .services import claim_anonymous_classifications


@receiver(user_logged_in, dispatch_uid="frontend_claim_anonymous_classifications")
def claim_on_login(sender, request, user, **kwargs) -> None:
    session_id = request.session.get(SESSION_KEY) if request is not None else None
    if session_id:
        claim_anonymous_classifications(anonymous_key=Volunteer.anonymous(session_id).key, user_id=user.id)
