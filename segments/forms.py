"""The segment form of the dashboard; its rule travels apart (`segments.rule_editor`)."""

from django import forms

from segments.models import Segment


class SegmentForm(forms.ModelForm):
    class Meta:
        model = Segment
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
