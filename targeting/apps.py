from django.apps import AppConfig


class TargetingConfig(AppConfig):
    name = "targeting"
    verbose_name = "Targeting"

    def ready(self) -> None:
        from targeting import signals

        signals.connect()
