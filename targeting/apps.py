from django.apps import AppConfig

from segments import registry
from surveys import parts


class TargetingConfig(AppConfig):
    name = "targeting"
    verbose_name = "Targeting"

    def ready(self) -> None:
        # Models are loaded only now: what is registered reads them.
        from targeting import signals, survey_part, uses

        signals.connect()
        registry.register_segment_users(uses.USERS)
        parts.register(survey_part.PART)
