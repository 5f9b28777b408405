"""The contact list and the responses walked page by page by key (refiner/keyset.py).

Every row is on exactly one page whichever way the reader walks, rows that share a
moment included; a cursor that this list did not give is a 400, never a 5xx; and a
cursor or a search shows a member of another workspace nothing of this one.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from refiner import keyset
from surveys.models import Response
from tests.factories import ContactFactory, ResponseFactory, SurveyFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TAMPERED = [
    "x",
    "1_",
    "_1",
    "1_2_3",
    "1.5_2",
    " 1_2",
    "1_2 ",
    "1_-2",
    "١_٢",
    "²_1",
    "9" * 20 + "_1",
    "1_" + "9" * 20,
    "1_9223372036854775808",
    "9223372036854775807_1",
    "-9223372036854775808_1",
    "%00",
    "x" * 5000,
]


def moments(count: int) -> list[datetime]:
    """Three rows to a moment, so that pages split rows that tie on it."""
    return [NOON - timedelta(minutes=n // 3) for n in range(count)]


@pytest.fixture
def contacts(workspace):
    return [
        ContactFactory(workspace=workspace, user_id=f"c-{n:02}", last_seen_at=moment)
        for n, moment in enumerate(moments(60))
    ]


@pytest.fixture
def responses(workspace):
    survey = SurveyFactory(workspace=workspace)
    return [
        ResponseFactory(
            workspace=workspace,
            survey=survey,
            contact=ContactFactory(workspace=workspace),
            created_at=moment,
        )
        for moment in moments(60)
    ]


def walk(client, path: str, direction: str, cursor: str | None = None, **query) -> list[list]:
    """Every page from the first (or from `cursor`), following `direction` links."""
    pages = []
    while True:
        asked = {
            **query,
            **({("after" if direction == "older" else "before"): cursor} if cursor else {}),
        }
        response = client.get(path, asked, headers=HX)
        assert response.status_code == 200
        page = response.context["page"]
        pages.append([row.pk for row in page])
        cursor = getattr(page, direction)
        if cursor is None:
            return pages


@pytest.mark.parametrize("path, rows", [("/contacts/", "contacts"), ("/responses/", "responses")])
def test_walking_older_then_newer_shows_every_row_once_in_order(owner, request, path, rows):
    made = request.getfixturevalue(rows)
    moment = "last_seen_at" if rows == "contacts" else "created_at"
    expected = [r.pk for r in sorted(made, key=lambda r: (getattr(r, moment), r.pk), reverse=True)]

    older = walk(owner, path, "older")
    assert [len(page) for page in older] == [25, 25, 10]
    assert [pk for page in older for pk in page] == expected

    last = owner.get(path, {"after": keyset.cursor_of(NOON - timedelta(days=1), 1)}, headers=HX)
    assert list(last.context["page"]) == []  # past the end: nothing, and no 404
    from_end = last.context["page"]
    assert from_end.older is None and from_end.newer is None

    newest_of_last_page = made_by_pk(made)[older[-1][0]]
    start = keyset.cursor_of(getattr(newest_of_last_page, moment), newest_of_last_page.pk)
    newer = walk(owner, path, "newer", cursor=start)
    assert [pk for page in reversed(newer) for pk in page] == expected[:50]
    assert newer[-1] == older[0]


def made_by_pk(rows) -> dict:
    return {row.pk: row for row in rows}


def test_the_links_carry_the_cursor_and_keep_the_search(owner, contacts):
    response = owner.get("/contacts/", {"q": "c-"})
    html, page = response.content.decode(), response.context["page"]

    assert f'href="?q=c-&amp;after={page.older}"' in html
    assert "before=" not in html  # the first page has nothing newer
    second = owner.get("/contacts/", {"q": "c-", "after": page.older}).content.decode()
    assert "before=" in second and 'href="?q=c-" hx-get="?q=c-"' in second


def test_the_survey_filter_is_kept_through_the_responses_pages(owner, workspace, responses):
    other = SurveyFactory(workspace=workspace)
    ResponseFactory(workspace=workspace, survey=other, contact=ContactFactory(workspace=workspace))

    pages = walk(owner, "/responses/", "older", survey=responses[0].survey_id)

    assert sorted(pk for page in pages for pk in page) == sorted(r.pk for r in responses)


@pytest.mark.parametrize("path", ["/contacts/", "/responses/"])
@pytest.mark.parametrize("name", ["after", "before"])
def test_a_cursor_the_list_did_not_give_is_a_400(owner, contacts, path, name):
    for value in TAMPERED:
        response = owner.get(path, {name: value})
        assert response.status_code == 400, value


@pytest.mark.parametrize("path", ["/contacts/", "/responses/"])
def test_a_cursor_of_the_first_year_or_of_no_row_is_only_a_place(owner, contacts, path):
    for cursor in ["-62135596800000000_1", "0_0", "253402300799999999_1"]:
        assert owner.get(path, {"after": cursor}).status_code == 200, cursor


def test_the_outsider_sees_nothing_through_a_cursor(owner, outsider, other_workspace, contacts):
    mine = ContactFactory(workspace=other_workspace, user_id="outsiders-own", last_seen_at=NOON)
    owners_cursor = owner.get("/contacts/").context["page"].older
    for name in ("after", "before"):
        page = outsider.get("/contacts/", {name: owners_cursor}).context["page"]
        assert [c.user_id for c in page] in ([], [mine.user_id])
    assert [c.user_id for c in outsider.get("/contacts/", {"q": "c-0"}).context["page"]] == []


def test_the_outsider_sees_no_response_through_a_cursor(owner, outsider, responses):
    owners_cursor = owner.get("/responses/").context["page"].older
    for name in ("after", "before"):
        response = outsider.get("/responses/", {name: owners_cursor})
        assert response.status_code == 200
        assert list(response.context["page"]) == []


def test_the_count_stops_at_its_limit(owner, contacts, monkeypatch):
    monkeypatch.setattr(keyset, "COUNT_LIMIT", 40)

    html = owner.get("/contacts/").content.decode()
    assert 'data-testid="contact-count">40+</span>' in html
    exact = owner.get("/contacts/", {"q": "c-1"}).content.decode()
    assert 'data-testid="contact-count">10</span> contacts' in exact


def test_the_score_summaries_do_not_join_responses_with_contacts(owner, responses):
    survey = responses[0].survey  # the factory's survey asks an NPS question
    with CaptureQueriesContext(connection) as queries:
        assert owner.get("/responses/", {"survey": survey.pk}).status_code == 200
    grouped = [q["sql"] for q in queries if "GROUP BY" in q["sql"]]
    assert grouped and not [sql for sql in grouped if 'JOIN "segments_contact"' in sql]


def test_results_still_leave_test_contacts_out(owner, workspace, responses):
    tester = responses[0].contact
    tester.is_test = True
    tester.save()

    page = owner.get("/responses/").context["page"]
    assert page.count == 59 and tester.pk not in {r.contact_id for r in page}
    with_tests = owner.get("/responses/", {"include_test": "1"}).context["page"]
    assert with_tests.count == 60


@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm indexes: PostgreSQL only")
@pytest.mark.parametrize("column", ["user_id", "email", "name"])
def test_the_search_compares_what_each_trigram_index_holds(owner, contacts, column):
    """The planner uses an expression index only for that very expression: the search's
    condition, as PostgreSQL prints it, must be the index's (at 1M it then picks them,
    docs/benchmarks.md; with a few rows any plan is cheapest)."""
    with CaptureQueriesContext(connection) as queries:
        owner.get("/contacts/", {"q": "ada@corp"})
    searched = [q["sql"] for q in queries if "LIKE" in q["sql"] and "LIMIT 26" in q["sql"]]
    assert len(searched) == 1
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {searched[0]}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SELECT pg_get_indexdef(%s::regclass)", [f"contact_search_{column}"])
        (index,) = cursor.fetchone()
    expression = f"upper(({column})::text)"
    assert f"({expression} gin_trgm_ops)" in index
    assert f"{expression} ~~ '%ADA@CORP%'" in plan, plan


def test_responses_pages_run_no_offset(owner, responses):
    cursor = owner.get("/responses/").context["page"].older
    with CaptureQueriesContext(connection) as queries:
        owner.get("/responses/", {"after": cursor})
    assert not [q["sql"] for q in queries if "OFFSET" in q["sql"]]
    assert Response.objects.count() == 60


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plan_cache_mode: PostgreSQL only")
def test_pages_are_planned_for_their_values_and_the_setting_ends_with_them(owner, contacts):
    # Prepared after five runs, a search would keep PostgreSQL's generic plan, which
    # walks every contact by recency (10 s at 1M for a text nobody has).
    with CaptureQueriesContext(connection) as queries:
        owner.get("/contacts/", {"q": "nobody-here"})
    sql = [q["sql"] for q in queries]
    setting = next(n for n, text in enumerate(sql) if "'force_custom_plan', true" in text)
    assert any("LIKE" in later for later in sql[setting:])
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("auto",)


def test_the_export_names_the_questions_of_answered_surveys_only(owner, workspace, responses):
    SurveyFactory(workspace=workspace, questions=[{"key": "unasked", "type": "text", "text": "?"}])
    tester = responses[0].contact
    tester.is_test = True
    tester.save()

    response = owner.get("/responses/export.csv")
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert "nps" in lines[0] and "unasked" not in lines[0]
    assert len(lines) == 1 + 59  # the test contact's response left out
