from django.apps import AppConfig

from segments import registry


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = "Surveys"

    def ready(self) -> None:
        # Models are loaded only now: the survey conditions read them.
        from surveys import conditions

        registry.register_survey_facts(conditions.FACTS)
