"""Rate limits: 429 with Retry-After and the SPEC §5 body, one counter per key, nothing written."""

import json

import pytest
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse

from refiner import ratelimit
from segments.models import Contact
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_counters():
    cache.clear()
    yield
    cache.clear()


def identify(api, user_id="u-1"):
    return api.post("/api/v1/identify-user", {"id": user_id})


def widget_post(client, key, path="/api/v1/widget/identify", ip="10.0.0.1", **extra):
    body = json.dumps({"workspace": key, "user": {"id": "u-1"}, **extra})
    return client.post(path, body, content_type="application/json", REMOTE_ADDR=ip)


@override_settings(RATE_LIMIT_REST_PER_MINUTE=3)
def test_it_answers_429_with_retry_after_past_the_rest_limit(api):
    assert [identify(api).status_code for _ in range(3)] == [200, 200, 200]

    response = identify(api)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60


@override_settings(RATE_LIMIT_REST_PER_MINUTE=1)
def test_a_rate_limited_call_writes_nothing(api, workspace):
    identify(api, "first")

    response = identify(api, "second")

    assert response.status_code == 429
    assert list(Contact.objects.filter(workspace=workspace).values_list("user_id", flat=True)) == [
        "first"
    ]


@override_settings(RATE_LIMIT_REST_PER_MINUTE=2)
def test_each_secret_key_has_its_own_counter(api, outsider_api):
    for _ in range(3):
        identify(api)

    assert identify(outsider_api).status_code == 200


@override_settings(RATE_LIMIT_REST_PER_MINUTE=0)
def test_a_zero_limit_disables_the_check(api):
    assert {identify(api).status_code for _ in range(30)} == {200}


@override_settings(RATE_LIMIT_REST_PER_MINUTE=1)
def test_calls_without_a_key_are_refused_not_counted(client):
    statuses = [client.get("/api/v1/contacts").status_code for _ in range(3)]

    assert statuses == [401, 401, 401]


@override_settings(RATE_LIMIT_WIDGET_PER_MINUTE=2)
def test_widget_calls_are_limited_per_widget_key(workspace):
    client = Client()
    for _ in range(2):
        assert widget_post(client, workspace.widget_key).status_code != 429

    response = widget_post(client, workspace.widget_key)

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1


@override_settings(RATE_LIMIT_WIDGET_PER_MINUTE=2)
def test_a_stranger_with_the_public_widget_key_cannot_use_up_the_quota(workspace):
    """The widget key is public: a flood from one address must not lock out the others."""
    client = Client()
    for _ in range(5):
        widget_post(client, workspace.widget_key, ip="203.0.113.9")

    assert widget_post(client, workspace.widget_key, ip="198.51.100.7").status_code != 429


@override_settings(RATE_LIMIT_WIDGET_PER_MINUTE=1)
def test_a_body_over_64_kib_is_answered_413_by_the_view_not_429(workspace):
    client = Client()
    widget_post(client, workspace.widget_key)
    huge = "x" * (65 * 1024)

    response = widget_post(client, workspace.widget_key, padding=huge)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


@override_settings(RATE_LIMIT_WIDGET_PER_MINUTE=1)
def test_widget_bodies_that_are_not_json_are_not_counted(workspace):
    client = Client()
    for _ in range(3):
        response = client.post(
            "/api/v1/widget/identify", "[" * 10_000, content_type="application/json"
        )
        assert response.status_code != 429


@override_settings(RATE_LIMIT_REST_PER_MINUTE=1)
def test_the_counter_starts_again_in_the_next_minute(api, monkeypatch):
    clock = [1_000_020.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    identify(api)
    assert identify(api).status_code == 429

    clock[0] += 60

    assert identify(api).status_code == 200


@override_settings(
    RATE_LIMIT_REST_PER_MINUTE=1,
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1",
        }
    },
)
def test_a_broken_cache_lets_requests_through(api):
    assert [identify(api).status_code for _ in range(3)] == [200, 200, 200]


def test_the_cache_never_holds_the_secret_key(api, workspace):
    identify(api)

    keys = list(cache._cache.keys())  # locmem's store

    assert keys
    assert not any(workspace.secret_key in key for key in keys)


@override_settings(RATE_LIMIT_LOGIN_PER_MINUTE=3)
def test_login_attempts_are_limited_per_address_and_username():
    user = UserFactory()
    client = Client()
    url = reverse("admin:login")
    for _ in range(3):
        response = client.post(url, {"username": user.username, "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error

    blocked = client.post(url, {"username": user.username, "password": "password"})
    other = client.post(url, {"username": "someone@example.com", "password": "wrong"})

    assert blocked.status_code == 429
    assert "Too many" in blocked.content.decode()
    assert int(blocked["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session
    assert other.status_code == 200


@override_settings(RATE_LIMIT_LOGIN_PER_MINUTE=1)
def test_the_dashboard_login_is_limited_too():
    url = reverse("login")
    client = Client()
    client.post(url, {"username": "a@example.com", "password": "x"})

    assert client.post(url, {"username": "a@example.com", "password": "x"}).status_code == 429


@pytest.mark.parametrize(
    "variant",
    [" {name}", "{name} ", "\u3000{name}", "{fullwidth}{rest}", "{upper}"],
    ids=["leading-space", "trailing-space", "ideographic-space", "full-width-letter", "upper"],
)
@override_settings(RATE_LIMIT_LOGIN_PER_MINUTE=2)
def test_a_username_spelt_differently_shares_the_blocked_counter(variant):
    """The form strips and NFKC-normalises the username; the counter must read it the same way."""
    user = UserFactory(username="ana@example.com")
    user.set_password("right-password")
    user.save()
    client = Client()
    url = reverse("login")
    for _ in range(2):
        client.post(url, {"username": user.username, "password": "wrong"})
    name = user.username
    spelt = variant.format(
        name=name, fullwidth=chr(ord(name[0]) + 0xFEE0), rest=name[1:], upper=name.upper()
    )

    response = client.post(url, {"username": spelt, "password": "right-password"})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def wrong_secret_key(client, ip="10.0.0.5", key="sk_wrong"):
    return client.get(
        "/api/v1/contacts", headers={"Authorization": f"Bearer {key}"}, REMOTE_ADDR=ip
    )


@override_settings(RATE_LIMIT_INVALID_KEY_PER_MINUTE=3)
def test_wrong_secret_keys_are_limited_per_address_before_any_query(
    workspace, django_assert_num_queries
):
    client = Client()
    guesses = [wrong_secret_key(client, key=f"sk_guess_{n}").status_code for n in range(3)]

    with django_assert_num_queries(0):
        blocked = wrong_secret_key(client, key="sk_guess_4")
        right_key_same_address = wrong_secret_key(client, key=workspace.secret_key)

    assert guesses == [401, 401, 401]
    assert blocked.status_code == 429
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert int(blocked["Retry-After"]) >= 1
    assert right_key_same_address.status_code == 429
    assert wrong_secret_key(client, ip="10.0.0.6", key=workspace.secret_key).status_code == 200


@override_settings(RATE_LIMIT_INVALID_KEY_PER_MINUTE=2)
def test_wrong_widget_keys_are_limited_per_address_before_any_query(
    workspace, django_assert_num_queries
):
    client = Client()
    guesses = [widget_post(client, f"wk_guess_{n}").status_code for n in range(2)]

    with django_assert_num_queries(0):
        blocked = widget_post(client, "wk_guess_3")

    assert guesses == [401, 401]
    assert blocked.status_code == 429
    assert widget_post(client, workspace.widget_key, ip="10.9.9.9").status_code == 200


@override_settings(RATE_LIMIT_INVALID_KEY_PER_MINUTE=2, RATE_LIMIT_REST_PER_MINUTE=0)
def test_the_right_key_is_never_counted_as_a_wrong_one(api):
    assert {identify(api).status_code for _ in range(6)} == {200}
