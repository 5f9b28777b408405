"""Preview tokens: a signed, expiring pass that shows one survey on the PM's own site.

A token names a workspace and a survey and nothing else. It is signed with Django's
secret key under its own salt, so no other signed value of the app can pass for one,
and it expires: a link pasted in a chat stops working the next day.
"""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.core import signing

from surveys.models import Survey

SALT = "refiner.survey-preview"
MAX_AGE_SECONDS = 24 * 60 * 60
URL_PARAMETER = "refiner_preview"
MAX_TOKEN = 500


class PreviewRefused(Exception):
    """The token is not a preview token of this app, or it has expired."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def preview_token(survey: Survey) -> str:
    return signing.dumps({"workspace": survey.workspace_id, "survey": survey.pk}, salt=SALT)


def previewed_survey_id(token: str, workspace_id: int, *, max_age: int = MAX_AGE_SECONDS) -> int:
    """The survey a token shows, if it is genuine, fresh and made for this workspace."""
    try:
        payload = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired:
        raise PreviewRefused("preview_expired", "The preview link has expired.") from None
    except signing.BadSignature:
        raise PreviewRefused("bad_preview_token", "The preview token is not valid.") from None
    if not isinstance(payload, dict) or payload.get("workspace") != workspace_id:
        # Another workspace's token: it says nothing about this widget key's surveys.
        raise PreviewRefused("bad_preview_token", "The preview token is not for this workspace.")
    survey_id = payload.get("survey")
    if not isinstance(survey_id, int):
        raise PreviewRefused("bad_preview_token", "The preview token is not valid.")
    return survey_id


def preview_link(page_url: str, token: str) -> str | None:
    """The page's URL with `refiner_preview=TOKEN` added; None when it is no web address."""
    try:
        parts = urlsplit(page_url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    query = parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != URL_PARAMETER] + [(URL_PARAMETER, token)]
    return urlunsplit(parts._replace(query=urlencode(query)))
