"""Hostile input on every JSON endpoint: never a 5xx, always the §5 error body, nothing written.

Each write endpoint gets random bodies shaped like its real ones (the right field
names with wrong types, huge or unicode strings, NUL bytes, SQL and JSON-path
metacharacters, nesting) and a few hand-made hostile ones. After any 4xx the
database must be exactly as before.
"""

import json
import re

import pytest
from django.test import Client
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
from targeting.models import Targeting
from tests.factories import (
    ContactFactory,
    DisplayFactory,
    ManualSegmentFactory,
    SegmentFactory,
    SurveyFactory,
)
from tests.strategies import json_values

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_rate_limits")]

HOSTILE_STRINGS = [
    "a'--",
    "'; DROP TABLE segments_contact; --",
    '" OR 1=1 --',
    "$.x",
    "$..*",
    '{"$gt":1}',
    "%",
    "_%",
    "\\",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff",
    "𝕌𝕟𝕚𝕔𝕠𝕕𝕖 ✓ مرحبا",
    "\u202e",
    "",
    " ",
    "x" * 300,
    "x" * 20_000,
    "account.plan",
    "user_id",
    "__proto__",
    "constructor",
    "NaN",
    "-1",
    "1e400",
    "2024-02-30",
    "../../etc/passwd",
    "<script>alert(1)</script>",
]
SNAKE_CASE = re.compile(r"[a-z][a-z0-9_]*")

any_json = json_values(HOSTILE_STRINGS, int_bound=2**70, text_size=20, key_size=8, max_leaves=15)
ids = st.sampled_from(["u-1", "u-2", "new-user", 7]) | st.sampled_from(HOSTILE_STRINGS)


def mostly(good):
    return st.one_of(good, good, any_json)


user_object = st.fixed_dictionaries(
    {"id": mostly(ids)},
    optional={
        "email": mostly(st.emails()),
        "name": mostly(st.text(max_size=30)),
        "plan": any_json,
        "a'--": any_json,
        "$.x": any_json,
        '{"$gt":1}': any_json,
        "account": mostly(st.fixed_dictionaries({"id": ids}, optional={"tier": any_json})),
    },
)
rule = st.fixed_dictionaries(
    {
        "type": mostly(st.just("group")),
        "match": mostly(st.sampled_from(["all", "any", "none"])),
        "conditions": mostly(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "type": mostly(st.sampled_from(["attribute", "event", "segment"])),
                        "attribute": mostly(st.sampled_from(["plan", "a'--", "$.x"])),
                        "operator": mostly(st.sampled_from(["equals", "contains", "in"])),
                        "value": any_json,
                    }
                ),
                max_size=3,
            )
        ),
    }
)
question = st.fixed_dictionaries(
    {
        "key": mostly(st.sampled_from(["nps", "q1", "a'--"])),
        "type": mostly(st.sampled_from(["nps", "rating", "single_choice", "text"])),
        "text": mostly(st.text(max_size=30)),
    },
    optional={"choices": mostly(st.lists(st.text(max_size=10), max_size=4))},
)
targeting = st.fixed_dictionaries(
    {},
    optional={
        "audience": mostly(st.sampled_from(["everyone", "segments"])),
        "segments": mostly(st.lists(st.integers(min_value=-1, max_value=10**12), max_size=3)),
        "trigger": mostly(st.sampled_from(["page_load", "event", "manual"])),
        "trigger_event": any_json,
        "allowed_pages": mostly(
            st.lists(st.fixed_dictionaries({"match": any_json, "value": any_json}), max_size=2)
        ),
        "sample_percent": mostly(st.integers(min_value=-5, max_value=105)),
        "starts_at": mostly(st.sampled_from(["2026-01-01T00:00:00Z", "2026-13-01"])),
        "priority": any_json,
    },
)

# Plausible fields of every body; each endpoint's strategy picks from these.
FIELDS = {
    "user": user_object,
    "id": ids,
    "email": st.emails(),
    "plan": any_json,
    "account": any_json,
    "user_id": ids,
    "event": mostly(st.sampled_from(["signed_up", "report_exported"])),
    "occurred_at": mostly(st.sampled_from(["2026-06-01T10:00:00Z", "yesterday", "2026-02-30"])),
    "name": mostly(st.text(max_size=40)),
    "description": any_json,
    "kind": mostly(st.sampled_from(["rules", "manual"])),
    "rules": rule,
    "user_ids": mostly(st.lists(ids, max_size=4)),
    "identity_verification": mostly(st.booleans()),
    "allowed_origins": mostly(st.lists(st.sampled_from(["https://a.example", "ftp://x"]))),
    "recontact_days": mostly(st.integers(min_value=-3, max_value=5000)),
    "status": mostly(st.sampled_from(["draft", "live", "paused", "archived"])),
    "questions": mostly(st.lists(question, max_size=3)),
    "targeting": mostly(targeting),
    "survey": mostly(st.integers(min_value=-1, max_value=10**12)),
    "url": mostly(st.sampled_from(["https://app.example/x", "javascript:alert(1)"])),
    "answers": mostly(
        st.dictionaries(st.sampled_from(["nps", "choice", "comment", "nope"]), any_json)
    ),
    "completed": mostly(st.booleans()),
    "signature": mostly(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
}

# (method, path, credentials, fields its body may carry)
ENDPOINTS = [
    ("post", "/api/v1/identify-user", "rest", ["id", "email", "name", "plan", "account"]),
    ("post", "/api/v1/track-event", "rest", ["user_id", "event", "occurred_at"]),
    ("post", "/api/v1/segments", "rest", ["name", "description", "kind", "rules"]),
    ("put", "/api/v1/segments/{segment}", "rest", ["name", "description", "kind", "rules"]),
    ("post", "/api/v1/segments/preview", "rest", ["rules"]),
    ("post", "/api/v1/segments/{manual}/members", "rest", ["user_ids"]),
    ("delete", "/api/v1/segments/{manual}/members", "rest", ["user_ids"]),
    (
        "patch",
        "/api/v1/workspace",
        "rest",
        ["name", "identity_verification", "allowed_origins", "recontact_days"],
    ),
    ("post", "/api/v1/surveys", "rest", ["name", "status", "questions", "targeting"]),
    ("put", "/api/v1/surveys/{survey}", "rest", ["name", "status", "questions", "targeting"]),
    ("post", "/api/v1/widget/identify", "widget", ["user", "signature"]),
    ("post", "/api/v1/widget/track", "widget", ["user_id", "event", "signature"]),
    ("post", "/api/v1/widget/eligibility", "widget", ["user_id", "event", "url", "survey"]),
    ("post", "/api/v1/widget/displays", "widget", ["user_id", "survey", "signature"]),
    ("post", "/api/v1/widget/displays/{display}/answers", "widget", ["answers", "completed"]),
    ("post", "/api/v1/widget/displays/{display}/dismiss", "widget", ["user_id"]),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _, _ in ENDPOINTS]

COUNTED = [
    Account,
    AccountValue,
    Contact,
    ContactValue,
    Event,
    Segment,
    SegmentMember,
    Survey,
    Question,
    Targeting,
    Display,
    Response,
    Answer,
]


class World:
    """One workspace with a bit of everything, and a way to send bodies to it."""

    def __init__(self, workspace):
        self.workspace = workspace
        self.contact = ContactFactory(workspace=workspace, user_id="u-1", traits={"plan": "pro"})
        ContactFactory(workspace=workspace, user_id="u-2")
        self.segment = SegmentFactory(workspace=workspace)
        self.manual = ManualSegmentFactory(workspace=workspace)
        self.survey = SurveyFactory(
            workspace=workspace,
            questions=[
                {"key": "nps", "type": "nps", "text": "How likely?"},
                {"key": "choice", "type": "single_choice", "text": "Which?", "choices": ["a"]},
                {"key": "comment", "type": "text", "text": "Why?"},
            ],
        )
        self.display = DisplayFactory(survey=self.survey, contact=self.contact)
        self.client = Client(raise_request_exception=False)

    def path(self, template: str) -> str:
        return template.format(
            segment=self.segment.pk,
            manual=self.manual.pk,
            survey=self.survey.pk,
            display=self.display.pk,
        )

    def send(self, method: str, template: str, credentials: str, raw: bytes | str):
        headers = {}
        if credentials == "rest":
            headers["Authorization"] = f"Bearer {self.workspace.secret_key}"
        return getattr(self.client, method)(
            self.path(template), raw, content_type="application/json", headers=headers
        )

    def body(self, credentials: str, data: dict) -> dict:
        if credentials == "widget" and "workspace" not in data:
            data = {"workspace": self.workspace.widget_key, **data}
        return data

    def state(self) -> dict:
        """Everything a rejected request must leave as it was."""
        self.workspace.refresh_from_db()
        return {
            "counts": {model.__name__: model.objects.count() for model in COUNTED},
            "workspace": self.workspace.settings_dict(),
            "contacts": sorted(
                Contact.objects.values_list("user_id", "email", "name", "traits", "account_id")
            ),
            "segments": sorted(Segment.objects.values_list("id", "name", "description", "rules")),
            "surveys": sorted(Survey.objects.values_list("id", "name", "status")),
            "targeting": sorted(
                Targeting.objects.values_list("survey_id", "audience", "trigger", "sample_percent")
            ),
            "displays": sorted(
                (str(pk), str(a), str(b))
                for pk, a, b in Display.objects.values_list("pk", "dismissed_at", "completed_at")
            ),
            "responses": sorted(
                (str(d), json.dumps(a, sort_keys=True), c)
                for d, a, c in Response.objects.values_list("display_id", "answers", "completed")
            ),
        }


@pytest.fixture
def world(workspace):
    return World(workspace)


def require(path: str) -> None:
    """A renamed or removed route fails here, rather than leaving its fuzzing silently undone."""
    try:
        resolve(path.split("?")[0])
    except Resolver404:
        pytest.fail(f"{path} resolves to no view: update this file's ENDPOINTS")


def check_answer(response, before: dict, world: World) -> None:
    """Never a 5xx; a 4xx carries the error body and changed nothing."""
    assert response.status_code < 500, response.content[:500]
    if response.status_code == 204:
        return
    assert response["Content-Type"].startswith("application/json")
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}
        assert set(body["error"]) <= {"code", "message", "fields"}
        assert SNAKE_CASE.fullmatch(body["error"]["code"])
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        if "fields" in body["error"]:
            assert isinstance(body["error"]["fields"], dict) and body["error"]["fields"]
        assert world.state() == before, "a rejected request wrote something"


def bodies(fields: list[str]):
    return st.fixed_dictionaries(
        {}, optional={name: FIELDS[name] for name in fields} | {"junk": any_json}
    )


@pytest.mark.parametrize(("method", "path", "credentials", "fields"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_random_bodies_never_break_an_endpoint(world, method, path, credentials, fields):
    require(world.path(path))

    @given(data=bodies(fields) | any_json)
    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def run(data):
        if isinstance(data, dict):
            data = world.body(credentials, data)
        before = world.state()
        response = world.send(method, path, credentials, json.dumps(data))
        check_answer(response, before, world)

    run()


@pytest.mark.parametrize(
    ("method", "path", "credentials", "fields"),
    [e for e in ENDPOINTS if e[2] == "widget"],
    ids=[i for i, e in zip(ENDPOINT_IDS, ENDPOINTS, strict=True) if e[2] == "widget"],
)
def test_with_identity_verification_random_signatures_write_nothing(
    world, method, path, credentials, fields
):
    require(world.path(path))
    world.workspace.identity_verification = True
    world.workspace.save()

    @given(
        data=bodies(fields),
        signature=st.text(max_size=70) | st.sampled_from(HOSTILE_STRINGS) | any_json,
    )
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    def run(data, signature):
        data = world.body(credentials, {**data, "signature": signature})
        before = world.state()
        response = world.send(method, path, credentials, json.dumps(data))
        check_answer(response, before, world)
        if "dismiss" not in path and "answers" not in path:
            # Only the display endpoints work by display id rather than by user id.
            assert response.status_code >= 400

    run()


def deep(levels: int, leaf="x") -> str:
    return "[" * levels + json.dumps(leaf) + "]" * levels


RAW_BODIES = {
    "empty": "",
    "not json": "{workspace: 1",
    "array": "[]",
    "string": '"hello"',
    "number": "42",
    "null": "null",
    "NaN": '{"x": NaN}',
    "Infinity": '{"x": Infinity}',
    "huge integer": '{"x": ' + "9" * 5000 + "}",
    "10,000 nested lists": deep(10_000),
    "10,000 nested objects": '{"a":' * 10_000 + "1" + "}" * 10_000,
    "lone surrogate": '{"name": "\\ud800"}',
    "NUL": '{"name": "a\\u0000b"}',
    "duplicate keys": '{"name": "a", "name": "b", "user_ids": 1, "user_ids": 2}',
}


@pytest.mark.parametrize("raw_name", list(RAW_BODIES))
@pytest.mark.parametrize(("method", "path", "credentials", "fields"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_malformed_bodies_are_refused_with_the_error_body(
    world, method, path, credentials, fields, raw_name
):
    require(world.path(path))
    before = world.state()

    response = world.send(method, path, credentials, RAW_BODIES[raw_name])

    check_answer(response, before, world)
    if raw_name != "duplicate keys":
        assert 400 <= response.status_code < 500


@pytest.mark.parametrize(("method", "path", "credentials", "fields"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_non_utf8_bytes_are_refused(world, method, path, credentials, fields):
    require(world.path(path))
    before = world.state()

    response = world.send(method, path, credentials, b'{"name": "\xff\xfe"}')

    check_answer(response, before, world)
    assert response.status_code == 400


@pytest.mark.parametrize(("method", "path", "credentials", "fields"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_a_body_over_64_kib_is_refused_with_413(world, method, path, credentials, fields):
    require(world.path(path))
    before = world.state()
    body = world.body(credentials, {"name": "x" * (64 * 1024)})

    response = world.send(method, path, credentials, json.dumps(body))

    check_answer(response, before, world)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


@pytest.mark.parametrize("levels", [10, 200, 500, 900, 990])
@pytest.mark.parametrize(
    "path", ["/api/v1/identify-user", "/api/v1/widget/identify", "/api/v1/segments/preview"]
)
def test_deep_nesting_inside_a_field_is_never_a_server_error(world, path, levels):
    require(path)
    credentials = "widget" if "widget" in path else "rest"
    value = json.loads(deep(min(levels, 900)))
    data = {
        "/api/v1/identify-user": {"id": "deep", "plan": value},
        "/api/v1/widget/identify": {"user": {"id": "deep", "plan": value}},
        "/api/v1/segments/preview": {"rules": {"type": "group", "match": "all",
                                               "conditions": [value]}},
    }[path]  # fmt: skip
    raw = json.dumps(world.body(credentials, data)) if levels < 950 else None
    if raw is None:  # beyond what json.dumps writes; build the text by hand
        raw = json.dumps(world.body(credentials, data)).replace(deep(900), deep(levels))
    before = world.state()

    response = world.send("post", path, credentials, raw)

    check_answer(response, before, world)
    if levels > 64:
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_json"
    elif "identify" in path:
        assert response.status_code == 200


TRICKY_VALUES = ["a'--", "$.x", '{"$gt":1}', "%", "_", "\\", "𝕌𝕟𝕚𝕔𝕠𝕕𝕖", "' OR '1'='1"]


@pytest.mark.parametrize("value", TRICKY_VALUES)
def test_metacharacters_in_trait_values_are_stored_verbatim_and_matched_exactly(api, value):
    api.post("/api/v1/identify-user", {"id": "tricky", "plan": value})
    api.post("/api/v1/identify-user", {"id": "plain", "plan": "enterprise"})

    stored = api.get("/api/v1/contacts/tricky").json()
    preview = api.post(
        "/api/v1/segments/preview",
        {
            "rules": {
                "type": "group",
                "match": "all",
                "conditions": [
                    {"type": "attribute", "attribute": "plan", "operator": "equals", "value": value}
                ],
            }
        },
    ).json()
    contains = api.post(
        "/api/v1/segments/preview",
        {
            "rules": {
                "type": "group",
                "match": "all",
                "conditions": [
                    {
                        "type": "attribute",
                        "attribute": "plan",
                        "operator": "contains",
                        "value": value,
                    }
                ],
            }
        },
    ).json()

    assert stored["traits"]["plan"] == value
    assert preview == {"count": 1, "sample": ["tricky"], "warnings": []}
    assert contains == {"count": 1, "sample": ["tricky"], "warnings": []}


@pytest.mark.parametrize("key", ["a'--", "$.x", '{"$gt":1}', "a.b", "", "-x", "x" * 101, "\x00"])
def test_metacharacters_in_trait_keys_are_refused_and_nothing_is_written(api, workspace, key):
    response = api.post("/api/v1/identify-user", {"id": "keyed", key: "v"})

    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("invalid", "invalid_json")
    assert not Contact.objects.filter(workspace=workspace).exists()


def test_an_object_as_a_trait_value_is_opaque_to_rules(api):
    api.post("/api/v1/identify-user", {"id": "obj", "plan": {"$gt": 1}})

    preview = api.post(
        "/api/v1/segments/preview",
        {
            "rules": {
                "type": "group",
                "match": "all",
                "conditions": [
                    {"type": "attribute", "attribute": "plan", "operator": "greater_than",
                     "value": 0}
                ],
            }
        },
    ).json()  # fmt: skip

    assert preview["count"] == 0


BAD_RULE = {
    "type": "group",
    "match": "all",
    "conditions": [{"type": "attribute", "attribute": "plan", "operator": []}],
}
# Bodies the fuzzing above once found a 500 with; kept so that they are always tried.
FOUND = [
    ("post", "/api/v1/segments", "rest", {"name": "x", "kind": "rules", "rules": BAD_RULE}),
    ("put", "/api/v1/segments/{segment}", "rest", {"name": "x", "rules": BAD_RULE}),
    ("post", "/api/v1/segments/preview", "rest", {"rules": BAD_RULE}),
    ("post", "/api/v1/surveys", "rest",
     {"name": "x", "questions": [{"key": [], "type": "nps", "text": ""}]}),
    ("put", "/api/v1/surveys/{survey}", "rest",
     {"questions": [{"key": {}, "type": "nps", "text": "Why?"}]}),
    ("post", "/api/v1/surveys", "rest",
     {"name": "x", "questions": [{"key": "q", "type": ["nps"], "text": "Why?"}]}),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "credentials", "body"), FOUND)
def test_bodies_that_once_broke_an_endpoint_are_refused(world, method, path, credentials, body):
    before = world.state()

    response = world.send(method, path, credentials, json.dumps(world.body(credentials, body)))

    check_answer(response, before, world)
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/api/v1/widget/track", "/api/v1/widget/eligibility"])
@pytest.mark.parametrize("signature", ["\x80", "é" * 64, "\U0001f600"])
def test_a_non_ascii_signature_is_refused_not_a_crash(world, path, signature):
    world.workspace.identity_verification = True
    world.workspace.save()
    body = world.body("widget", {"user_id": "u-1", "event": "x", "signature": signature})
    before = world.state()

    response = world.send("post", path, "widget", json.dumps(body))

    check_answer(response, before, world)
    assert response.status_code == 403
