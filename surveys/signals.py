"""Signals the surveys app sends when a contact meets a survey; other apps listen.

Each is sent after the change commits, with sender=Survey and the keyword argument
display (its survey is `display.survey`); survey_completed adds response. A receiver
that fails is logged and does not fail the request: the change is already saved, and a
client told otherwise would send it again.
"""

from django.db import transaction
from django.dispatch import Signal

from surveys.models import Survey

survey_displayed = Signal()
survey_completed = Signal()
survey_dismissed = Signal()


def send_after_commit(signal: Signal, **kwargs) -> None:
    """Send `signal` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: signal.send(sender=Survey, **kwargs), robust=True)
