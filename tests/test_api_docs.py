"""The HTTP reference (docs/api.md) keeps up with the URLconf, and the docs stay in the repo.

Like tests/test_isolation.py, the routes come from walking the URLconf, so a new API
URL without a section in docs/api.md fails here.
"""

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"
# In the reference, a path parameter is written in capitals: ID, USER_ID, DISPLAY_ID.
PLACEHOLDER = "[A-Z][A-Z_]*"
SAMPLE_VALUES = {
    "ID": "12",
    "USER_ID": "u-42",
    "DISPLAY_ID": "0b6f2c1e-5d4a-4f7e-9c3b-2a1d0e9f8c7b",
    "DELIVERY_ID": "7",
}
# What a documented endpoint's heading looks like: `### METHOD /api/...`.
HEADING = re.compile(r"^#{2,4} (?:GET|POST|PUT|PATCH|DELETE) (/api/\S+)\s*$", re.MULTILINE)
LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


def api_routes() -> list[str]:
    """Every URL pattern under /api/, as a route string with Django's `<conv:name>` parts."""
    found: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                if route.startswith("api/"):
                    found.append("/" + route)

    walk(get_resolver().url_patterns, "")
    return found


def documented_paths() -> list[str]:
    return HEADING.findall(API_DOC.read_text())


def route_regex(route: str) -> re.Pattern:
    """`/api/v1/segments/<int:segment_id>` as a pattern matching `/api/v1/segments/ID`."""
    parts = re.split(r"<[^>]+>", route)
    return re.compile("^" + PLACEHOLDER.join(re.escape(part) for part in parts) + "$")


def test_the_urlconf_has_api_routes_to_check():
    routes = api_routes()
    assert "/api/v1/widget/identify" in routes
    assert "/api/v1/segments/<int:segment_id>/members" in routes


@pytest.mark.parametrize("route", api_routes())
def test_every_api_url_has_a_section_in_the_reference(route):
    pattern = route_regex(route)
    assert any(pattern.match(path) for path in documented_paths()), (
        f"{route} has no `### METHOD {route}` section in docs/api.md "
        "(write parameters in capitals, such as ID or USER_ID)"
    )


@pytest.mark.parametrize("path", documented_paths())
def test_every_documented_path_is_a_real_url(path):
    concrete = re.sub(PLACEHOLDER, lambda m: SAMPLE_VALUES.get(m.group(), m.group()), path)
    try:
        resolve(concrete)
    except Resolver404:
        pytest.fail(f"docs/api.md documents {path}, which the URLconf does not have")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


# [text](target), [label]: target, and <scheme://...> autolinks.
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
AUTOLINK = re.compile(r"<([a-z][a-z0-9+.-]*:[^>\s]+)>", re.IGNORECASE)


def links(text: str) -> list[str]:
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text) + AUTOLINK.findall(text)


def leaves_the_repository(source: Path, target: str) -> str | None:
    """Why `target`, linked from `source`, points outside the repository (None: it stays)."""
    parts = urlsplit(target)
    if parts.scheme or target.startswith("//"):
        if parts.scheme in ("http", "https") and parts.hostname in LOOPBACK_HOSTS:
            return None  # the app running on this machine, as `make run` serves it
        return "an address outside the repository"
    if not parts.path:
        return None  # an anchor in the same file
    if parts.path.startswith("/"):
        return "an absolute path"
    resolved = (source.parent / parts.path).resolve()
    if not resolved.is_relative_to(ROOT):
        return "a path that leaves the repository"
    if not resolved.exists():
        return "a file that does not exist"
    return None


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_link_only_inside_the_repository(path):
    text = path.read_text()
    problems = [
        f"{target}: {why}"
        for target in links(text)
        if (why := leaves_the_repository(path, target)) is not None
    ]
    assert problems == []
    assert "../" not in text, "a path with ../ leaves the repository"


def test_the_link_check_catches_links_that_leave_the_repository():
    readme = ROOT / "README.md"
    for target in ["../shared/SPEC.md", "https://example.org/spec", "/work/shared/SPEC.md",
                   "docs/missing.md", "docs/../../shared/SPEC.md"]:  # fmt: skip
        assert leaves_the_repository(readme, target) is not None, target
    for target in ["docs/api.md", "docs/security.md#rate-limits", "#configuration",
                   "http://127.0.0.1:8000/"]:  # fmt: skip
        assert leaves_the_repository(readme, target) is None, target
    assert links("see [spec](../shared/SPEC.md) and <https://example.org>") == [
        "../shared/SPEC.md",
        "https://example.org",
    ]


def named_tests(text: str) -> set[str]:
    """The test functions a doc names: `test_…` words, module names (`test_x.py`) left out."""
    return set(re.findall(r"\b(test_\w+)\b(?!\.py)", text))


def test_the_security_doc_names_only_tests_that_exist():
    """docs/security.md proves each defence by a test's name; a renamed test must not go stale."""
    defined = set()
    for module in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^\s*def (test_\w+)", module.read_text(), re.MULTILINE))
    modules = {path.stem for path in (ROOT / "tests").rglob("test_*.py")}
    named = named_tests((ROOT / "docs" / "security.md").read_text()) - modules
    assert named, "the security doc names no tests"
    assert named <= defined, sorted(named - defined)


def test_the_test_name_check_sees_a_name_that_does_not_exist():
    assert named_tests("proved by `tests/test_x.py::test_it_never_was`") == {"test_it_never_was"}
