"""The webhooks pages in Chromium: an owner adds an endpoint, an event reaches a real
receiver through the worker, the delivery log shows it and Redeliver sends it again."""

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from refiner.models import Membership
from surveys.services import record_answers, record_display
from tests.factories import ContactFactory, MembershipFactory, SurveyFactory
from tests.webhook_receiver import run_worker_until_settled
from webhooks.models import Delivery, Endpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "webhook-deliveries.png"


@pytest.fixture
def owner(live_server, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    return MembershipFactory(role=Membership.OWNER, workspace__name="Acme Analytics")


def sign_in(page, live_server, membership) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", membership.user.username)
    page.fill("#id_password", "password")
    page.click("button[type=submit]")
    page.wait_for_load_state()


def test_an_owner_adds_an_endpoint_sees_a_delivery_and_redelivers_it(
    page, page_errors, live_server, owner, receiver
):
    sign_in(page, live_server, owner)
    page.click("nav.mainnav >> text=Webhooks")
    page.click("text=New endpoint")
    page.fill("#id_url", receiver.url)
    page.check("input[name=events][value='survey.completed']")
    page.click("button:has-text('Add endpoint')")
    secret = page.inner_text("[data-testid=endpoint-secret]")
    endpoint = Endpoint.objects.get(workspace=owner.workspace)
    assert secret == endpoint.secret and endpoint.events == ["survey.completed"]

    survey = SurveyFactory(
        workspace=owner.workspace,
        name="NPS",
        questions=[{"key": "nps", "type": "nps", "text": "Recommend us?"}],
    )
    contact = ContactFactory(workspace=owner.workspace, user_id="u-42")
    display = record_display(survey=survey, contact=contact, now=timezone.now())
    record_answers(display=display, answers={"nps": 9}, completed=True, now=timezone.now())
    run_worker_until_settled()

    page.click("text=Delivery log")
    row = page.locator("#delivery-table tbody tr").first
    assert "survey.completed" in row.inner_text() and "Delivered" in row.inner_text()
    assert row.locator("td.num").nth(1).inner_text() == "200"
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    row.locator("button:has-text('Redeliver')").click()
    page.wait_for_load_state()
    assert "queued again" in page.inner_text(".messages")
    run_worker_until_settled()
    page.reload()

    assert page.locator("#delivery-table tbody tr").count() == 2
    assert Delivery.objects.filter(status=Delivery.SUCCEEDED).count() == 2
    ids = {json.loads(r.body)["id"] for r in receiver.requests}
    assert len(receiver.requests) == 2 and len(ids) == 1
    assert page_errors == []
