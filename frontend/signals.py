"""Keep an anonymous volunteer's history when they sign up or sign in."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from classifications.volunteers import anonymous_volunteer

from .services import claim_anonymous_classifications


@receiver(user_logged_in, dispatch_uid="frontend_claim_anonymous_classifications")
def claim_on_login(sender, request, user, **kwargs) -> None:
    anonymous = anonymous_volunteer(request) if request is not None else None
    if anonymous is not None:
        claim_anonymous_classifications(anonymous_key=anonymous.key, user_id=user.id)
