from django.apps import AppConfig


class ClassificationsConfig(AppConfig):
    name = "classifications"
    verbose_name = "Classifications and the subject queue"
