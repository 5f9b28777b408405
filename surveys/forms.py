"""Dashboard forms for surveys and responses.

They only turn browser input into the REST API's shapes; the rules themselves
live in `surveys.services.clean_questions` and `targeting.api.clean_survey`, so
the dashboard and the API cannot disagree.
"""

import re
from datetime import date

from django import forms

from refiner.http import parse_id
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


class SegmentsField(forms.ModelMultipleChoiceField):
    """Segments by id; an id that is not a whole number in the database's range is unknown."""

    def _check_values(self, value):
        for pk in value:
            if parse_id(str(pk)) is None:
                raise forms.ValidationError("There is no such segment in this workspace.")
        return super()._check_values(value)


class ResultsForm(forms.Form):
    """The results page's choice of segments to compare: `?segment=ID&segment=ID`."""

    MAX_SEGMENTS = 4

    segment = SegmentsField(
        queryset=Segment.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=f"Compare up to {MAX_SEGMENTS} segments with everyone.",
    )

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.filter(workspace=workspace).order_by(
            "name", "id"
        )

    def clean_segment(self):
        chosen = self.cleaned_data["segment"]
        if len(chosen) > self.MAX_SEGMENTS:
            raise forms.ValidationError(f"Choose at most {self.MAX_SEGMENTS} segments.")
        return chosen


# The API's messages name fields by their JSON paths and formats by their standards;
# people on the dashboard read the same rules in words. The API keeps its paths.
_PLAIN_WORDS = [
    (re.compile(r"an ISO-8601 date or datetime( \([^)]*\))?"), "a date, or a date and time"),
    (re.compile(r"ISO-8601"), "date"),
    (re.compile(r", or null\b"), ", or left empty"),
    (re.compile(r"\bstarts_at\b"), "the start"),
    (re.compile(r"\bends_at\b"), "the end"),
    # The choices a select offers, as the select names them.
    (re.compile(r"\b(starts_with|page_load|every_trigger)\b"), lambda m: m[1].replace("_", " ")),
    (
        re.compile(r"\b(question|condition)s\[(\d+)\]\.(\w+)"),
        lambda m: f"the {m[3].replace('_', ' ')} of {m[1]} {int(m[2]) + 1}",
    ),
    (re.compile(r"\b(question|condition)s\[(\d+)\]"), lambda m: f"{m[1]} {int(m[2]) + 1}"),
]


def plain_words(message: str) -> str:
    """An API error message said for the dashboard: no field paths, no format names."""
    for pattern, words in _PLAIN_WORDS:
        message = pattern.sub(words, message)
    return message
