"""Domain events of the galaxies app, for the apps above it (galaxies imports none of them)."""

from django.dispatch import Signal

#: Galaxies were created or updated (inside the writing transaction).
#: Keyword arguments: ``galaxy_ids`` (list of int).
galaxies_saved = Signal()
