"""Odd input in a path or query string is a 400 or 404, never a 5xx (SPEC §5).

A NUL character cannot sit in PostgreSQL text and means nothing in any of our
addresses; the last day of the calendar has no next day; a question key typed by a
dashboard user becomes a spreadsheet header. The broad sweep over every URL is in
tests/test_fuzz_query.py; these are the cases first seen failing.
"""

import csv
import io

import pytest
from django.test import Client
from django.utils import timezone

from tests.factories import ContactFactory, SurveyFactory, record_response

pytestmark = pytest.mark.django_db


@pytest.fixture
def lenient(owner) -> Client:
    """The owner's client, answering 500s as a server would rather than raising them."""
    owner.raise_request_exception = False
    return owner


@pytest.mark.parametrize(
    "path",
    ["/api/v1/contacts/%00", "/api/v1/contacts/u%00x", "/api/v1/contacts?segment=%00"],
)
def test_a_nul_in_an_api_address_is_a_400_with_the_error_body(api, path):
    response = api.get(path)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "path", ["/contacts/%00/", "/contacts/?q=%00", "/contacts/?q=a%00b", "/responses/?%00=1"]
)
def test_a_nul_in_a_dashboard_address_is_the_400_page(lenient, path):
    response = lenient.get(path)

    assert response.status_code == 400
    assert "Bad request" in response.content.decode()


def test_a_nul_is_refused_before_the_key_is_looked_up(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/api/v1/contacts/%00", headers={"Authorization": "Bearer x"})

    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/responses/", "/responses/export.csv"])
@pytest.mark.parametrize(
    "dates",
    [{"end": "9999-12-31"}, {"start": "0001-01-01"}, {"start": "9999-12-31", "end": "9999-12-31"}],
)
def test_the_first_and_last_days_of_the_calendar_are_accepted(lenient, path, dates):
    assert lenient.get(path, dates).status_code == 200


@pytest.mark.parametrize("key", ['=HYPERLINK("http://evil.test")', "+1", "-1", "@SUM(A1)", "\tx"])
def test_csv_neutralises_formulas_in_question_keys_too(lenient, workspace, key):
    survey = SurveyFactory(
        workspace=workspace, questions=[{"key": key, "type": "text", "text": "?"}]
    )
    contact = ContactFactory(workspace=workspace)
    record_response(survey, contact, {key: "fine"}, timezone.now(), completed=True)

    body = b"".join(lenient.get("/responses/export.csv").streaming_content).decode()
    header = next(csv.reader(io.StringIO(body)))

    assert "'" + key in header
    assert key not in header
