from django.apps import AppConfig


class RefinerConfig(AppConfig):
    name = "refiner"
    verbose_name = "Workspaces"
