"""Domain events other apps may react to. Sent by the services (the submit path writes with
plain SQL, so model signals such as post_save do not fire for classifications)."""

from django.dispatch import Signal

#: A counted classification was stored (inside the submit transaction).
#: Keyword arguments: ``workflow_id``, ``classification_id``.
classification_counted = Signal()
