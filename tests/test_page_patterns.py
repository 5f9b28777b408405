"""`pattern` page rules: `*` matches any run of characters, in time linear in the URL."""

import re
import time

from hypothesis import example, given, settings
from hypothesis import strategies as st

from targeting.eligibility import page_matches

# Few letters, so that generated patterns and URLs often overlap and both outcomes occur.
LETTERS = "ab/*.?"


def regex_semantics(value: str, target: str) -> bool:
    """The meaning of a pattern, spelt as the regex a glob translates to."""
    regex = ".*".join(re.escape(part) for part in value.split("*"))
    return re.fullmatch(regex, target, re.DOTALL) is not None


@settings(max_examples=1500, deadline=None)
@given(
    value=st.text(alphabet=LETTERS, max_size=10),
    url=st.text(alphabet=LETTERS.replace("*", "") + "*\n", max_size=14),
)
@example(value="a*b*a", url="aba")  # the middle part must not reuse the last part's letters
@example(value="**", url="")
@example(value="a**", url="a")
@example(value="*a*", url="a")
@example(value="ab*ba", url="aba")
def test_a_pattern_means_what_the_equivalent_regex_means(value, url):
    # Full URLs and rules, so that the path-only comparison of "/" rules does not come into it.
    value, url = "h:" + value, "h:" + url

    assert page_matches({"match": "pattern", "value": value}, url) == regex_semantics(value, url)


def test_a_path_pattern_still_matches_the_path_of_a_full_url():
    rule = {"match": "pattern", "value": "/projects/*/edit"}

    assert page_matches(rule, "https://app.example/projects/7/edit")
    assert not page_matches(rule, "https://app.example/projects/7/edit/more")


def fastest_of(runs: int, call) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def test_a_hostile_pattern_cannot_stall_a_worker():
    """Twenty stars against 2,000 slashes: with a backtracking `.*` regex, minutes."""
    url = "https://x.example" + "/" * 2000
    hostile = [
        {"match": "pattern", "value": "*/" * 20 + "edit"},
        {"match": "pattern", "value": "*/" * 20 + "*edit*"},
        {"match": "pattern", "value": "https://*" + "/*" * 20 + "x/"},
    ]

    for rule in hostile:
        seconds = fastest_of(3, lambda rule=rule: page_matches(rule, url))
        assert seconds < 0.05, (rule["value"], seconds)
        assert not page_matches(rule, url)
