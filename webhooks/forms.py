from django import forms

from webhooks.cleaning import events_problem, url_problem
from webhooks.models import EVENTS, Endpoint


class EndpointForm(forms.Form):
    url = forms.CharField(label="URL", max_length=2000)
    events = forms.MultipleChoiceField(
        choices=EVENTS, widget=forms.CheckboxSelectMultiple, label="Events"
    )
    format = forms.ChoiceField(choices=Endpoint.FORMATS, initial=Endpoint.JSON)
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        if problem := url_problem(url):
            raise forms.ValidationError(problem)
        return url

    def clean_events(self) -> list[str]:
        events = self.cleaned_data["events"]
        if problem := events_problem(events):
            raise forms.ValidationError(problem)
        return events


def endpoint_initial(endpoint: Endpoint) -> dict:
    return {
        "url": endpoint.url,
        "events": endpoint.events,
        "format": endpoint.format,
        "is_active": endpoint.is_active,
    }
