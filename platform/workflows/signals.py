"""Domain events of the workflows app, for the apps above it (workflows imports none of them)."""

from django.dispatch import Signal

#: A workflow was created or its tree saved (inside the writing transaction).
#: Keyword arguments: ``workflow`` (the saved Workflow).
workflow_tree_saved = Signal()
