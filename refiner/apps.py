from django.apps import AppConfig
from django.db.backends.signals import connection_created


class RefinerConfig(AppConfig):
    name = "refiner"
    verbose_name = "Workspaces"

    def ready(self) -> None:
        from refiner import budget, checks, ops  # noqa: F401  (registers the checks and the signal)

        connection_created.connect(budget.unlimited_outside_requests)
