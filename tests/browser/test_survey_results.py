"""The survey editor's housekeeping and the results page in a real browser: the banner an
htmx change must clear, answers that wrap between words, and results by segment."""

import random
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from surveys.models import Survey
from tests.browser.pages import sign_in
from tests.factories import ContactFactory, SegmentFactory, SurveyFactory, record_response
from tests.rules import plan_is

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "results-by-segment.png"


def respond(survey: Survey, answers: dict, *, plan: str, at) -> None:
    contact = ContactFactory(workspace=survey.workspace, traits={"plan": plan})
    record_response(survey, contact, answers, at, completed=True)


def test_adding_a_question_clears_the_needs_a_question_banner(
    page, page_errors, live_server, owner
):
    from playwright.sync_api import expect

    survey = SurveyFactory(workspace=owner.workspace, status=Survey.DRAFT, questions=[])
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/surveys/{survey.pk}/")
    page.get_by_role("button", name="Publish").click()
    banner = page.locator("main > ul.messages")
    expect(banner).to_contain_text("A live survey needs at least one question.")

    page.fill("#new-text", "How likely are you to recommend us?")
    page.get_by_role("button", name="Add question").click()

    expect(page.locator(".question-card:not(.new-question)")).to_have_count(1)
    expect(banner).to_have_count(0)
    # A second change finds no banner: nothing is reported missing.
    page.fill("#new-text", "Why?")
    page.get_by_role("button", name="Add question").click()
    expect(page.locator(".question-card:not(.new-question)")).to_have_count(2)
    assert [line for line in console if line.startswith("error")] == []
    assert page_errors == []


SPLIT_WORDS = """cell => {
    // The words of the cell that are cut across two lines.
    const text = cell.firstChild, split = [];
    const re = /\\S+/g;
    let match;
    while ((match = re.exec(text.data))) {
        const range = document.createRange();
        range.setStart(text, match.index);
        range.setEnd(text, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
        if (tops.size > 1) split.push(match[0]);
    }
    return {split: split, fits: cell.scrollWidth <= cell.clientWidth};
}"""


def test_answers_wrap_between_words_and_only_long_tokens_break(page, live_server, owner):
    """A long question beside its answer must not squeeze the answer to a few letters a line."""
    question = "Thinking about the last month of using the product every day, " * 3
    survey = SurveyFactory(
        workspace=owner.workspace,
        name="Quarterly product feedback from the enterprise accounts",
        questions=[{"key": "why", "type": "text", "text": question.strip()}],
    )
    sentence = "Internationalisation: exporting reports takes far too many clicks every morning"
    token = "https://example.com/" + "x" * 160
    respond(survey, {"why": sentence}, plan="free", at=timezone.now())
    respond(survey, {"why": token}, plan="free", at=timezone.now())
    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/responses/")

    words = page.locator("dl.answers dd", has_text="Internationalisation").evaluate(SPLIT_WORDS)
    url = page.locator("dl.answers dd", has_text="example.com").evaluate(SPLIT_WORDS)

    assert words == {"split": [], "fits": True}
    assert url["fits"] and url["split"] == [token], "only the over-long token breaks"


def test_results_by_segment_screenshot(page, page_errors, live_server, owner):
    from playwright.sync_api import expect

    workspace = owner.workspace
    enterprise = SegmentFactory(workspace=workspace, name="Enterprise", rules=plan_is("ent"))
    free = SegmentFactory(workspace=workspace, name="Free", rules=plan_is("free"))
    survey = SurveyFactory(
        workspace=workspace,
        name="Quarterly NPS",
        questions=[
            {"key": "nps", "type": "nps", "text": "How likely are you to recommend Acme?"},
            {"key": "reports", "type": "rating", "text": "How useful are the reports?"},
            {"key": "uses", "type": "multiple_choice", "text": "What do you use most?",
             "choices": ["Dashboards", "Exports", "Alerts"]},
        ],
    )  # fmt: skip
    chance = random.Random(14)  # the same picture every run
    now = timezone.now()
    for week in range(10):
        at = now - timedelta(weeks=week, hours=1)
        for _ in range(6):
            nps = chance.choice([10, 10, 9, 9, 9, 8, 7, 6])
            respond(survey, {"nps": nps, "reports": chance.choice([4, 5, 5, 3]),
                             "uses": chance.sample(["Dashboards", "Exports", "Alerts"], 2)},
                    plan="ent", at=at)  # fmt: skip
        if week % 3 == 0:
            nps = chance.choice([9, 7, 6, 4, 2])
            respond(survey, {"nps": nps, "reports": chance.choice([2, 3, 4]),
                             "uses": [chance.choice(["Dashboards", "Alerts"])]},
                    plan="free", at=at)  # fmt: skip

    sign_in(page, live_server, owner)
    page.goto(f"{live_server.url}/surveys/{survey.pk}/")
    page.get_by_role("link", name="Results").click()
    page.get_by_label("Enterprise").check()
    page.get_by_label("Free").check()
    page.get_by_role("button", name="Compare").click()

    page.wait_for_url(f"**/results/?segment={enterprise.pk}&segment={free.pk}")
    expect(page.locator(".result-group h2")).to_have_text(["Everyone", "Enterprise", "Free"])
    expect(page.locator(".small-group").first).to_contain_text("too few to read")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert page_errors == []
