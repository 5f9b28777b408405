from django.apps import AppConfig


class RefinerConfig(AppConfig):
    name = "refiner"
    verbose_name = "Workspaces"

    def ready(self):
        from refiner import checks, ops  # noqa: F401  (registers the checks and the signal)
