"""Hostile query strings and path parts on every GET page and endpoint: never a 5xx (SPEC §5).

The URLs come from the URLconf through tests/test_isolation.py's tables, so a new
page or endpoint is fuzzed as soon as it exists. Each gets random query parameters
(the names our views read, and others) holding NUL characters, huge and negative
numbers, dates far outside any calendar a database keeps, odd unicode and invalid
UTF-8; routes with an id in their path also get huge ids and odd user ids.
"""

import re
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_isolation import API, DASHBOARD, World, all_routes, api_url, dashboard_url
from tests.test_isolation import world as isolation_world

pytestmark = pytest.mark.django_db

# Every name a view reads from a query string, and a few none does.
PARAMETERS = ["page", "after", "before", "segment", "survey", "q", "status", "start", "end",
              "event", "url", "user", "key", "kind", "next", "id", "x", ""]  # fmt: skip
HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    "9" * 30,
    "-" + "9" * 30,
    "18446744073709551616",
    "9223372036854775808",
    "-1",
    "0",
    "1e400",
    "NaN",
    "²",  # isdigit(), yet int() refuses it
    "١٢",  # Arabic-Indic digits
    "9999-12-31",
    "0001-01-01",
    "0000-00-00",
    "99999-01-01",
    "-0001-01-01",
    "2024-02-30",
    "9999-12-31T23:59:59",
    "\ud800",
    "\u202e",
    "𝕌𝕟𝕚𝕔𝕠𝕕𝕖",
    "%",
    "_",
    "'",
    "",
    "x" * 5000,
]
NUMBERS_AND_DATES = ["9" * 30, "-1", "²", "١٢", "9999-12-31", "0001-01-01", "99999-01-01", "\x00"]
HUGE_IDS = ["9" * 30, "18446744073709551616", "9223372036854775808", "0"]
ODD_USER_IDS = ["a\x00b", "\x00", "𝕌𝕟𝕚", "x" * 3000, "%", "..", "a b"]

# Mostly the hostile values: a parser bug hides behind one exact value more often than not.
values = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.sampled_from(HOSTILE_VALUES),
    st.text(max_size=12),
    st.integers().map(str),
)
queries = st.lists(st.tuples(st.sampled_from(PARAMETERS) | st.text(max_size=6), values), max_size=4)


def encoded(text: str) -> str:
    # surrogatepass: a lone surrogate becomes bytes that are not UTF-8, as a client may send.
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def query_string(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{encoded(name)}={encoded(value)}" for name, value in pairs)


@pytest.fixture
def world(settings) -> World:
    """Workspace A with one of everything, as the isolation tables name them."""
    return isolation_world.__wrapped__(settings)


def get_routes() -> list[tuple[str, str]]:
    """(kind, name) of every route that may answer a GET."""
    routes = all_routes()
    dashboard = [("dashboard", name) for name in DASHBOARD if name in routes]
    rest = [("api", name) for name, methods in API.items() if "GET" in methods]
    return dashboard + rest


def path_of(world: World, kind: str, name: str) -> str:
    route = all_routes()[name]
    if kind == "dashboard":
        return dashboard_url(world, name, route)
    return api_url(world, name, route)


def odd_paths(world: World, kind: str, name: str) -> list[str]:
    """The route's path with each id swapped for a huge or odd one."""
    path = path_of(world, kind, name)
    found = []
    for number in re.findall(r"/(\d+)(?=/|$)", path):
        found += [path.replace(f"/{number}", f"/{huge}", 1) for huge in HUGE_IDS]
    if world.contact.user_id in path:
        found += [path.replace(world.contact.user_id, encoded(odd)) for odd in ODD_USER_IDS]
    return found


def client_for(world: World, kind: str) -> Client:
    client = Client(raise_request_exception=False)
    if kind == "dashboard":
        client.force_login(world.owner_a)
        return client
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.a.secret_key}"
    return client


def check(response, kind: str, url: str) -> None:
    assert response.status_code < 500, f"{url}: {response.status_code}"
    if kind == "api" and response.status_code >= 400:
        assert response.json()["error"]["code"], url


@pytest.mark.parametrize(("kind", "name"), get_routes(), ids=[n for _, n in get_routes()])
def test_hostile_query_strings_never_give_a_5xx(world, kind, name):
    client = client_for(world, kind)
    path = path_of(world, kind, name)
    if client.get(path).status_code == 405:
        pytest.skip(f"{name} answers no GET")

    @given(pairs=queries)
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def run(pairs):
        url = f"{path}?{query_string(pairs)}"
        check(client.get(url), kind, url)

    run()


@pytest.mark.parametrize(("kind", "name"), get_routes(), ids=[n for _, n in get_routes()])
def test_huge_ids_and_odd_user_ids_in_the_path_never_give_a_5xx(world, kind, name):
    client = client_for(world, kind)
    for url in odd_paths(world, kind, name):
        check(client.get(url), kind, url)


@pytest.mark.parametrize(("kind", "name"), get_routes(), ids=[n for _, n in get_routes()])
def test_every_hostile_value_in_every_parameter_never_gives_a_5xx(world, kind, name):
    """The sweep the random test may miss: each value in every parameter, and in each alone."""
    client = client_for(world, kind)
    path = path_of(world, kind, name)
    if client.get(path).status_code == 405:
        pytest.skip(f"{name} answers no GET")
    for value in HOSTILE_VALUES:
        url = f"{path}?{query_string([(parameter, value) for parameter in PARAMETERS])}"
        check(client.get(url), kind, url)
    for parameter in ("page", "segment", "survey", "start", "end"):
        for value in NUMBERS_AND_DATES:
            url = f"{path}?{query_string([(parameter, value)])}"
            check(client.get(url), kind, url)
