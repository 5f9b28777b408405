"""The survey editor's "Preview on my site" block: a token, a snippet and a link."""

from django import template

from surveys.models import Survey
from targeting.preview import preview_link, preview_token

register = template.Library()


@register.simple_tag
def survey_preview(survey: Survey, page_url: str | None) -> dict:
    """What the block shows: the snippet always, the link once a page URL is given."""
    token = preview_token(survey)
    preview = {"token": token, "snippet": f"_refiner('previewForm', '{token}');"}
    if page_url:
        preview["link"] = preview_link(page_url, token)
        preview["problem"] = None if preview["link"] else "Enter a page address (http or https)."
    return preview
