"""Dashboard forms for surveys and responses.

They only turn browser input into the REST API's shapes; the rules themselves
live in `surveys.services.clean_questions` and `targeting.api.clean_survey`, so
the dashboard and the API cannot disagree.
"""

from datetime import date

from django import forms

from segments.models import Segment
from surveys.models import Question, Survey
from surveys.services import CHOICE_TYPES


class SurveyCreateForm(forms.Form):
    name = forms.CharField(max_length=200, strip=True)


class QuestionForm(forms.Form):
    key = forms.CharField(
        max_length=100,
        required=False,
        help_text="Answers are saved under it; left blank, one is made from the type.",
    )
    type = forms.ChoiceField(choices=Question.TYPES)
    text = forms.CharField(max_length=1000)
    choices = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One choice per line (choice questions only).",
    )

    def question(self, key: str) -> dict:
        """The question as `clean_questions` takes it, under `key`."""
        kind = self.cleaned_data["type"]
        lines = [line.strip() for line in self.cleaned_data["choices"].splitlines()]
        choices = [line for line in lines if line]
        # Switching a choice question to another type leaves its old choices in the
        # box; they no longer mean anything, so they are dropped rather than refused.
        if kind in CHOICE_TYPES:
            return {"key": key, "type": kind, "text": self.cleaned_data["text"], "choices": choices}
        return {"key": key, "type": kind, "text": self.cleaned_data["text"]}


def question_initial(question: Question) -> dict:
    return {
        "key": question.key,
        "type": question.type,
        "text": question.text,
        "choices": "\n".join(question.choices or []),
    }


def new_question_key(kind: str, taken: set[str]) -> str:
    """`nps`, then `nps_2`, `nps_3`...: readable keys that stay unique in the survey."""
    if kind not in taken:
        return kind
    number = 2
    while f"{kind}_{number}" in taken:
        number += 1
    return f"{kind}_{number}"


class ResponseFilterForm(forms.Form):
    survey = forms.ModelChoiceField(queryset=Survey.objects.none(), required=False)
    segment = forms.ModelChoiceField(queryset=Segment.objects.none(), required=False)
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["survey"].queryset = Survey.objects.filter(workspace=workspace)
        self.fields["survey"].empty_label = "All surveys"
        self.fields["segment"].queryset = Segment.objects.filter(workspace=workspace)
        self.fields["segment"].empty_label = "Everyone"

    def clean(self) -> dict:
        cleaned = super().clean()
        start: date | None = cleaned.get("start")
        end: date | None = cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", "Must not be before the start date.")
        return cleaned
