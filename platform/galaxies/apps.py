from django.apps import AppConfig


class GalaxiesConfig(AppConfig):
    name = "galaxies"
    verbose_name = "Galaxies (subjects)"
