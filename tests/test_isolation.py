"""Nothing crosses workspaces (SPEC §2, §8): every dashboard page and API endpoint, every outsider.

Workspace A holds one of everything. The outsiders are: a member of workspace B,
a viewer of A trying to write, an anonymous visitor, A's public widget key used
on the REST API, and B's keys used on A's objects. Each of them, on every URL,
gets a refusal (302 to the login page, 401, 403, 404 or 405), never sees A's
data, and changes nothing in A. The tables below must name every URL: a new URL
without an entry fails `test_every_url_is_in_the_tables`.
"""

import json
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from refiner.models import Membership, Workspace
from segments.models import (
    Account,
    AccountValue,
    Contact,
    ContactValue,
    Event,
    Segment,
    SegmentMember,
)
from surveys.models import Answer, Display, Question, Response, Survey
from surveys.services import dismiss_display, record_display
from targeting.models import Targeting
from tests.factories import (
    AccountFactory,
    ContactFactory,
    EndpointFactory,
    EventFactory,
    ManualSegmentFactory,
    MembershipFactory,
    SegmentFactory,
    SurveyFactory,
    UserFactory,
    WorkspaceFactory,
    record_response,
)
from tests.rules import plan_is
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

SECRET_MARKS = [
    "alpha-segment-name",
    "alpha-user-id",
    "alpha-survey-name",
    "alpha@corp.example",
    "alpha-hook.example",
]


def all_routes() -> dict[str, str]:
    """name -> route of every URL pattern, admin and static excluded."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern).startswith("admin/"):
                    continue
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and pattern.name:
                found[pattern.name] = prefix + str(pattern.pattern)

    walk(get_resolver().url_patterns, "")
    return found


@dataclass
class World:
    a: object
    b: object
    owner_a: object
    viewer_a: object
    viewer_membership: object
    owner_b: object
    segment: object
    manual: object
    contact: object
    survey: object
    question: object
    display: object
    endpoint: object
    delivery: object

    def kwargs(self) -> dict:
        """A's object for every URL parameter name used anywhere."""
        return {
            "pk": None,  # depends on the URL; see DASHBOARD
            "segment_id": self.segment.pk,
            "survey_id": self.survey.pk,
            "question_id": self.question.pk,
            "user_id": self.contact.user_id,
            "display_id": self.display.pk,
            "endpoint_id": self.endpoint.pk,
            "delivery_id": self.delivery.pk,
        }

    def state(self) -> dict:
        """Everything of A's that an outsider must not be able to change, field by field.

        Every column of every row is compared, so trait values, their parsed forms, targeting
        and its segments, answers and completion all count, and so does a new column.
        """
        a = self.a
        targeting = Targeting.objects.filter(survey__workspace=a)
        return {
            "workspace": rows(Workspace.objects.filter(pk=a.pk)),
            "members": rows(Membership.objects.filter(workspace=a)),
            "accounts": rows(Account.objects.filter(workspace=a)),
            "account values": rows(AccountValue.objects.filter(workspace=a)),
            "contacts": rows(Contact.objects.filter(workspace=a)),
            "contact values": rows(ContactValue.objects.filter(workspace=a)),
            "events": rows(Event.objects.filter(workspace=a)),
            "segments": rows(Segment.objects.filter(workspace=a)),
            "segment members": rows(SegmentMember.objects.filter(segment__workspace=a)),
            "surveys": rows(Survey.objects.filter(workspace=a)),
            "questions": rows(Question.objects.filter(survey__workspace=a)),
            "targeting": rows(targeting),
            "targeted segments": rows(
                Targeting.segments.through.objects.filter(targeting__in=targeting)
            ),
            "excluded segments": rows(
                Targeting.excluded_segments.through.objects.filter(targeting__in=targeting)
            ),
            "displays": rows(Display.objects.filter(workspace=a)),
            "responses": rows(Response.objects.filter(workspace=a)),
            "answers": rows(Answer.objects.filter(workspace=a)),
            "webhook endpoints": rows(Endpoint.objects.filter(workspace=a)),
            "webhook deliveries": rows(Delivery.objects.filter(workspace=a)),
        }


def rows(queryset) -> list[str]:
    """Each row as sorted JSON of all its columns, in a stable order."""
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in queryset.values())


@pytest.fixture
def world(settings) -> World:
    settings.RATE_LIMIT_WIDGET_PER_MINUTE = 0
    settings.RATE_LIMIT_REST_PER_MINUTE = 0
    settings.RATE_LIMIT_LOGIN_PER_MINUTE = 0
    # Users are made, not signed in with a password: skip the deliberately slow hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    a = WorkspaceFactory(name="Alpha")
    b = WorkspaceFactory(name="Beta")
    owner_a = MembershipFactory(workspace=a, role=Membership.OWNER).user
    viewer_membership = MembershipFactory(workspace=a, role=Membership.VIEWER)
    owner_b = MembershipFactory(workspace=b, role=Membership.OWNER).user
    account = AccountFactory(workspace=a, external_id="alpha-account", traits={"seats": "12"})
    contact = ContactFactory(
        workspace=a,
        user_id="alpha-user-id",
        email="alpha@corp.example",
        traits={"plan": "pro", "since": "2026-01-31", "beta": True},
        account=account,
    )
    EventFactory(contact=contact)
    segment = SegmentFactory(
        workspace=a,
        name="alpha-segment-name",
        rules=plan_is("pro"),
    )
    manual = ManualSegmentFactory(workspace=a, name="alpha-manual", members=[contact])
    survey = SurveyFactory(
        workspace=a,
        name="alpha-survey-name",
        status=Survey.DRAFT,
        questions=[
            {"key": "nps", "type": "nps", "text": "Recommend us?"},
            {"key": "why", "type": "text", "text": "Why?"},
        ],
        targeting={"audience": Targeting.SEGMENTS, "sample_percent": 50},
    )
    survey.targeting.segments.add(segment)
    survey.targeting.excluded_segments.add(manual)
    # One display still open with a partial answer (what the widget endpoints could touch),
    # one completed and one dismissed.
    now = timezone.now()
    display = record_response(survey, contact, {"nps": 9}, now, completed=False).display
    record_response(survey, contact, {"nps": 10, "why": "alpha"}, now, completed=True)
    dismiss_display(display=record_display(survey=survey, contact=contact, now=now), now=now)
    endpoint = EndpointFactory(workspace=a, url="https://alpha-hook.example/in")
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        workspace=a,
        event="survey.completed",
        payload={"type": "survey.completed", "data": {"user_id": "alpha-user-id"}},
        status=Delivery.FAILED,
    )
    return World(
        a=a,
        b=b,
        owner_a=owner_a,
        viewer_a=viewer_membership.user,
        viewer_membership=viewer_membership,
        owner_b=owner_b,
        segment=segment,
        manual=manual,
        contact=contact,
        survey=survey,
        question=survey.questions.first(),
        display=display,
        endpoint=endpoint,
        delivery=delivery,
    )


def _change_trait(world):
    Contact.objects.filter(pk=world.contact.pk).update(traits={"plan": "hacked"})


def _change_parsed_contact_value(world):
    ContactValue.objects.filter(contact=world.contact, key="plan").update(text="hacked")


def _change_parsed_account_value(world):
    AccountValue.objects.filter(account__workspace=world.a, key="seats").update(num=13)


def _change_targeting(world):
    Targeting.objects.filter(survey=world.survey).update(sample_percent=100)


def _add_a_targeted_segment(world):
    world.survey.targeting.segments.add(world.manual)


def _drop_an_excluded_segment(world):
    world.survey.targeting.excluded_segments.clear()


def _change_an_answer(world):
    Response.objects.filter(display=world.display).update(answers={"nps": 0})


def _change_a_parsed_answer(world):
    Answer.objects.filter(workspace=world.a, key="nps").update(num=0)


def _complete_a_response(world):
    Response.objects.filter(display=world.display).update(completed=True)


def _complete_a_display(world):
    Display.objects.filter(pk=world.display.pk).update(completed_at=timezone.now())


def _dismiss_a_display(world):
    Display.objects.filter(pk=world.display.pk).update(dismissed_at=timezone.now())


@pytest.mark.parametrize(
    "change",
    [
        _change_trait,
        _change_parsed_contact_value,
        _change_parsed_account_value,
        _change_targeting,
        _add_a_targeted_segment,
        _drop_an_excluded_segment,
        _change_an_answer,
        _change_a_parsed_answer,
        _complete_a_response,
        _complete_a_display,
        _dismiss_a_display,
    ],
    ids=lambda change: change.__name__.strip("_"),
)
def test_the_state_comparison_sees_a_change_to(world, change):
    """Guards the suite itself: an outsider's write that the comparison missed would pass."""
    before = world.state()

    change(world)

    assert world.state() != before


# Dashboard ------------------------------------------------------------------------------

# name -> which of A's objects `pk` means (None: the URL has no `pk`).
DASHBOARD = {
    "home": None,
    "login": None,
    "logout": None,
    "switch-workspace": None,
    "settings": None,
    "rotate-keys": None,
    "member-add": None,
    "member-role": "viewer_membership",
    "member-remove": "viewer_membership",
    "install": None,
    "segment-list": None,
    "segment-new": None,
    "segment-preview": None,
    "segment-edit": "segment",
    "segment-delete": "segment",
    "segment-size": "segment",
    "segment-history": "segment",
    "segment-members-add": "manual",
    "segment-members-import": "manual",
    "segment-members-remove": "manual",
    "catalogue": None,
    "contact-list": None,
    "contact-detail": None,
    "contact-test": None,
    "survey-list": None,
    "survey-create": None,
    "survey-questions": None,
    "question-add": None,
    "question-change": None,
    "survey-status": None,
    "response-list": None,
    "response-export": None,
    "survey-targeting": None,
    "survey-rename": None,
    "survey-duplicate": None,
    "survey-delete": None,
    "survey-results": None,
    "demo": None,
    "webhook-list": None,
    "webhook-new": None,
    "webhook-edit": "endpoint",
    "webhook-secret": "endpoint",
    "webhook-delete": "endpoint",
    "webhook-deliveries": "endpoint",
    "webhook-redeliver": "endpoint",
}
# Pages anyone may open: signing in, and the widget's demo host page (dev only, see below).
PUBLIC = {"login", "logout", "demo"}
# POSTs that write nothing (previews, the session's workspace choice, signing out).
HARMLESS_POSTS = {"segment-preview", "switch-workspace", "logout", "login"}


def dashboard_url(world: World, name: str, route: str) -> str:
    kwargs = {k: v for k, v in world.kwargs().items() if f":{k}>" in route}
    if DASHBOARD[name]:
        kwargs["pk"] = getattr(world, DASHBOARD[name]).pk
    return reverse(name, kwargs=kwargs)


def attack_form(world: World) -> dict:
    """Plausible fields for every dashboard form, aimed at workspace A."""
    rule = {
        "type": "group",
        "match": "all",
        "conditions": [{"type": "attribute", "attribute": "plan", "operator": "is_set"}],
    }
    return {
        "name": "Hacked",
        "description": "hacked",
        "kind": "rules",
        "rules": json.dumps(rule),
        "identity_verification": "on",
        "allowed_origins": "https://evil.example",
        "recontact_days": "9",
        "email": world.owner_b.email,
        "role": Membership.OWNER,
        "key": "secret",
        "user_ids": world.contact.user_id,
        "user_id": world.contact.user_id,
        "is_test": "1",
        "status": Survey.LIVE,
        "type": "text",
        "text": "Hacked?",
        "action": "save",
        "audience": "everyone",
        "trigger": "page_load",
        "sample_percent": "50",
        "workspace": str(world.a.pk),
        "segment_id": str(world.segment.pk),
        "url": "https://evil.example/hook",
        "events": "survey.completed",
        "format": "json",
        "is_active": "on",
        "survey": str(world.survey.pk),
        "next": "/",
    }


def dashboard_urls(world: World) -> list[tuple[str, str]]:
    routes = all_routes()
    return [
        (name, dashboard_url(world, name, routes[name])) for name in DASHBOARD if name in routes
    ]


def check_untouched(world: World, before: dict, response, who: str, url: str) -> None:
    assert response.status_code < 500, f"{who} {url}: {response.status_code}"
    assert world.state() == before, f"{who} changed workspace A through {url}"


def leaked(response) -> list[str]:
    """A's data in a successful answer (a 404 may echo the id the caller sent)."""
    if response.status_code >= 300:
        return []
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content).decode(errors="replace")
    else:
        body = response.content.decode(errors="replace")
    return [mark for mark in SECRET_MARKS if mark in body]


REFUSED = {302, 401, 403, 404, 405}


def test_a_member_of_another_workspace_cannot_see_or_change_anything_of_a(world):
    client = Client(raise_request_exception=False)
    before = world.state()
    for name, url in dashboard_urls(world):
        # Signed in again for each URL: POSTing to logout (or login) signs the client out,
        # and every URL after it would then be tested on an anonymous visitor only.
        client.force_login(world.owner_b)
        targets_a = "<" in all_routes()[name]
        got = client.get(url)
        check_untouched(world, before, got, "B's member GET", url)
        assert not leaked(got), f"B's member sees A's data at {url}: {leaked(got)}"
        if targets_a:
            assert got.status_code in REFUSED, f"B's member GET {url}: {got.status_code}"
        posted = client.post(url, attack_form(world))
        check_untouched(world, before, posted, "B's member POST", url)
        if targets_a:
            assert posted.status_code in REFUSED, f"B's member POST {url}: {posted.status_code}"


def test_a_member_of_another_workspace_cannot_switch_into_it(world):
    client = Client(raise_request_exception=False)
    client.force_login(world.owner_b)

    response = client.post(reverse("switch-workspace"), {"workspace": str(world.a.pk)})
    settings_page = client.get(reverse("settings"))

    assert response.status_code == 404
    assert "Alpha" not in settings_page.content.decode()
    assert world.a.widget_key not in settings_page.content.decode()


def test_a_viewer_cannot_change_anything(world):
    client = Client(raise_request_exception=False)
    before = world.state()
    for name, url in dashboard_urls(world):
        client.force_login(world.viewer_a)  # again for each URL, as above
        response = client.post(url, attack_form(world))
        check_untouched(world, before, response, "A's viewer POST", url)
        if name not in HARMLESS_POSTS:
            assert response.status_code in REFUSED, f"viewer POST {url}: {response.status_code}"


def test_a_viewer_never_sees_the_secret_key(world):
    client = Client()
    client.force_login(world.viewer_a)
    for name, url in dashboard_urls(world):
        if name in ("logout", "login"):
            continue
        response = client.get(url)
        if not getattr(response, "streaming", False):
            assert world.a.secret_key not in response.content.decode(), url
            assert world.endpoint.secret not in response.content.decode(), url


def test_an_anonymous_visitor_is_sent_to_the_login_page(world):
    client = Client(raise_request_exception=False)
    before = world.state()
    for name, url in dashboard_urls(world):
        if name in PUBLIC:
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(url, attack_form(world) if method == "post" else {})
            check_untouched(world, before, response, f"anonymous {method.upper()}", url)
            assert response.status_code in REFUSED, f"anonymous {method} {url}"
            if response.status_code == 302:
                assert response["Location"].startswith(reverse("login")), url
            assert not leaked(response)


def test_the_demo_page_never_signs_user_ids_for_strangers(world):
    """With identity verification on, a signature for any user id is as good as the secret key."""
    world.a.identity_verification = True
    world.a.save()
    client = Client(raise_request_exception=False)

    response = client.get(reverse("demo"), {"key": world.a.widget_key, "user": "alpha-user-id"})

    from targeting.widget_api import signature_of

    assert signature_of(world.a, "alpha-user-id") not in response.content.decode()


# API ------------------------------------------------------------------------------------

# name -> (methods to try, body for writes)
API = {
    "api-identify-user": ["POST"],
    "api-track-event": ["POST"],
    "api-contacts": ["GET"],
    "api-contact": ["GET", "DELETE"],
    "api-segments": ["GET", "POST"],
    "api-segment-preview": ["POST"],
    "api-segment": ["GET", "PUT", "DELETE"],
    "api-segment-contacts": ["GET"],
    "api-segment-members": ["POST", "DELETE"],
    "api-surveys": ["GET", "POST"],
    "api-survey": ["GET", "PUT", "DELETE"],
    "api-survey-eligibility": ["GET"],
    "api-responses": ["GET"],
    "api-workspace": ["GET", "PATCH"],
    "api-ping": ["GET"],
    "widget-identify": ["POST"],
    "widget-track": ["POST"],
    "widget-eligibility": ["POST"],
    "widget-displays": ["POST"],
    "widget-display-answers": ["POST"],
    "widget-display-dismiss": ["POST"],
    "widget-preview": ["POST"],
    "api-webhooks": ["GET", "POST"],
    "api-webhook": ["GET", "PATCH", "DELETE"],
    "api-webhook-secret": ["POST"],
    "api-webhook-deliveries": ["GET"],
    "api-webhook-redeliver": ["POST"],
}
# Object-specific REST endpoints: B's secret key must get a 404 for A's object.
API_SEGMENT_ID = {"api-segment-members": "manual"}


def api_url(world: World, name: str, route: str) -> str:
    kwargs = {k: v for k, v in world.kwargs().items() if f":{k}>" in route}
    if name in API_SEGMENT_ID:
        kwargs["segment_id"] = getattr(world, API_SEGMENT_ID[name]).pk
    return reverse(name, kwargs=kwargs)


def api_body(world: World, widget_key: str, user_id: str = "alpha-user-id") -> dict:
    """A body for any endpoint; `user_id` is whom identify and track name."""
    rule = {"type": "group", "match": "all", "conditions": []}
    return {
        "workspace": widget_key,
        "id": user_id,
        "user": {"id": user_id, "plan": "hacked"},
        "user_id": user_id,
        "event": "hacked",
        "user_ids": [world.contact.user_id],
        "name": "Hacked",
        "rules": rule,
        "survey": world.survey.pk,
        "answers": {"nps": 0},
        "completed": True,
        "status": "live",
        "recontact_days": 7,
        "url": "https://evil.example/hook",
        "events": ["survey.completed"],
    }


def api_calls(world: World):
    routes = all_routes()
    for name, methods in API.items():
        if name not in routes:
            continue
        url = api_url(world, name, routes[name])
        for method in methods:
            yield name, method, url, "<" in routes[name]


def call(client: Client, method: str, url: str, body: dict | None, key: str | None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if method == "GET":
        return client.get(url, headers=headers)
    return getattr(client, method.lower())(
        url, json.dumps(body or {}), content_type="application/json", headers=headers
    )


def test_the_widget_key_opens_no_rest_endpoint(world):
    client = Client(raise_request_exception=False)
    before = world.state()
    for name, method, url, _ in api_calls(world):
        if name.startswith("widget-") or name == "api-ping":
            continue
        response = call(
            client, method, url, api_body(world, world.a.widget_key), world.a.widget_key
        )
        check_untouched(world, before, response, "widget key", f"{method} {url}")
        assert response.status_code == 401, f"{method} {url}"
        assert response.json()["error"]["code"] == "unauthorized"


def test_no_key_opens_no_rest_endpoint(world):
    client = Client(raise_request_exception=False)
    before = world.state()
    for name, method, url, _ in api_calls(world):
        if name.startswith("widget-") or name == "api-ping":
            continue
        response = call(client, method, url, api_body(world, ""), None)
        check_untouched(world, before, response, "no key", f"{method} {url}")
        assert response.status_code == 401, f"{method} {url}"


def test_another_workspaces_secret_key_cannot_read_or_change_a(world):
    client = Client(raise_request_exception=False)
    before = world.state()
    for name, method, url, targets_a in api_calls(world):
        if name.startswith("widget-"):
            continue
        # B's own writes name a user of B's own, so that what B reads back is B's.
        body = api_body(world, world.b.widget_key, "beta-own-user")
        response = call(client, method, url, body, world.b.secret_key)
        check_untouched(world, before, response, "B's secret key", f"{method} {url}")
        assert not leaked(response), f"B's key reads A's data at {method} {url}"
        if targets_a:
            assert response.status_code == 404, f"B's key {method} {url}: {response.status_code}"


def test_another_workspaces_secret_key_cannot_filter_by_as_objects(world):
    client = Client(raise_request_exception=False)
    for url in [
        f"/api/v1/contacts?segment={world.segment.pk}",
        f"/api/v1/responses?survey={world.survey.pk}",
        f"/api/v1/responses?segment={world.segment.pk}",
    ]:
        response = call(client, "GET", url, None, world.b.secret_key)
        assert response.status_code in (400, 404), url
        assert not leaked(response), url


def test_another_workspaces_widget_key_cannot_touch_as_displays_or_surveys(world):
    client = Client(raise_request_exception=False)
    world.survey.status = Survey.LIVE
    world.survey.save()
    before = world.state()
    for name, method, url, _ in api_calls(world):
        if not name.startswith("widget-"):
            continue
        response = call(client, method, url, api_body(world, world.b.widget_key), None)
        check_untouched(world, before, response, "B's widget key", f"{method} {url}")
        assert not leaked(response) or name == "widget-identify", url
        if name in ("widget-displays", "widget-display-answers", "widget-display-dismiss"):
            assert response.status_code == 404, f"B's widget key {url}: {response.status_code}"
        if name == "widget-eligibility":
            assert response.json() == {"surveys": []}


def test_a_wrong_or_missing_widget_key_opens_no_widget_endpoint(world):
    client = Client(raise_request_exception=False)
    before = world.state()
    for name, method, url, _ in api_calls(world):
        if not name.startswith("widget-"):
            continue
        for key in ("", "wk_guess", world.a.secret_key):
            response = call(client, method, url, api_body(world, key), None)
            check_untouched(world, before, response, f"widget key {key!r}", url)
            assert response.status_code == 401, f"{url} with {key!r}: {response.status_code}"


def test_every_url_is_in_the_tables():
    """A new URL needs its row here, so that its isolation is tested."""
    missing = sorted(set(all_routes()) - set(DASHBOARD) - set(API))

    assert not missing, f"add these URLs to the isolation tables: {missing}"


def test_every_url_in_the_tables_exists():
    """A renamed or removed URL must leave the tables too, or its old row silently tests nothing."""
    stale = sorted((set(DASHBOARD) | set(API)) - set(all_routes()))

    assert not stale, f"these names in the isolation tables are no URL: {stale}"


def test_the_tables_cover_urls_that_exist(world):
    """Guards the suite itself: most of the named URLs resolve and are exercised."""
    assert len(dashboard_urls(world)) >= 20
    assert len(list(api_calls(world))) >= 25


def test_a_member_of_both_workspaces_works_in_one_at_a_time(world):
    both = UserFactory()
    MembershipFactory(user=both, workspace=world.b, role=Membership.OWNER)
    MembershipFactory(user=both, workspace=world.a, role=Membership.VIEWER)
    client = Client(raise_request_exception=False)
    client.force_login(both)
    client.post(reverse("switch-workspace"), {"workspace": str(world.b.pk)})
    before = world.state()

    response = client.post(
        reverse("segment-edit", kwargs={"pk": world.segment.pk}), attack_form(world)
    )

    assert response.status_code in REFUSED
    assert world.state() == before
