from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Local demo: demo galaxies, simulated volunteers and the first model"
