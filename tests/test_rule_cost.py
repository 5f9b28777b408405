"""The work bound of SPEC §3.1: a rule's cost with every segment reference expanded."""

import json

import pytest
from django.urls import reverse

from segments.models import Segment
from segments.rules import (
    MAX_EXPANDED_CONDITIONS,
    MAX_EXPANDED_VALUES,
    MAX_REFERENCE_DEPTH,
    expanded_costs,
    validate_rule,
)
from tests.factories import ContactFactory, SegmentFactory
from tests.rules import group, plan, reference

pytestmark = pytest.mark.django_db


def one_of(count: int) -> dict:
    return {"type": "attribute", "attribute": "plan", "operator": "in",
            "value": [f"plan {i}" for i in range(count)]}  # fmt: skip


def tenfold_chain(workspace, depth: int) -> list[Segment]:
    """Segments each naming the one before ten times, stored without validation."""
    chain = [
        SegmentFactory(
            workspace=workspace, rules=group(*[plan(str(i)) for i in range(10)], match="any")
        )
    ]
    for _ in range(depth):
        rules = group(*[reference(chain[-1].pk)] * 10, match="any")
        chain.append(SegmentFactory(workspace=workspace, rules=rules))
    return chain


def too_complex(response) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "rule_too_complex"
    return error["fields"]


# The bound itself, on rule documents ---------------------------------------------------


def test_a_rule_of_exactly_1000_expanded_conditions_is_accepted():
    segments = {1: group(*[plan("pro")] * 99)}

    assert validate_rule(group(*[reference(1)] * 10), segments=segments) == {}


def test_one_more_expanded_condition_is_too_complex():
    segments = {1: group(*[plan("pro")] * 99)}

    problems = validate_rule(group(*[reference(1)] * 10, plan("pro")), segments=segments)

    assert problems.code == "rule_too_complex"
    assert f"{MAX_EXPANDED_CONDITIONS:,} conditions" in problems["rules"]


def test_list_values_count_across_references():
    segments = {1: group(*[one_of(1000)] * 5)}
    assert MAX_EXPANDED_VALUES == 5000

    assert validate_rule(group(reference(1)), segments=segments) == {}
    problems = validate_rule(group(reference(1), one_of(1)), segments=segments)
    assert problems.code == "rule_too_complex"
    assert "list values" in problems["rules"]


def chain(length: int) -> dict[int, dict]:
    """Segment 1 names nothing; each next one names the one before."""
    return {1: group(plan("pro")), **{pk: group(reference(pk - 1)) for pk in range(2, length + 1)}}


def test_chains_of_references_may_be_10_deep():
    assert MAX_REFERENCE_DEPTH == 10

    assert validate_rule(group(reference(10)), segments=chain(10)) == {}
    problems = validate_rule(group(reference(11)), segments=chain(11))
    assert problems.code == "rule_too_complex"
    assert "10 deep" in problems["rules"]


def test_costing_is_memoised_and_needs_no_recursion():
    # 3,000 segments in a chain, each naming the one before twice: 2**3000 conditions
    # when walked naively, and far deeper than Python's recursion limit.
    segments = {1: group(plan("pro")), **{pk: group(reference(pk - 1), reference(pk - 1))
                                     for pk in range(2, 3001)}}  # fmt: skip

    costs = expanded_costs(segments)

    assert costs[3000].depth == 2999
    assert costs[3000].conditions > 2**2999
    assert costs[3].conditions == 2 + 2 * (2 + 2 * 1)


def test_a_stored_cycle_or_missing_segment_costs_nothing_but_marks_its_users():
    segments = {1: group(reference(2)), 2: group(reference(1)), 3: group(reference(2)),
                4: group(reference(99)), 5: group(plan("pro"))}  # fmt: skip

    costs = expanded_costs(segments)

    assert [pk for pk, cost in costs.items() if cost is None] == [1, 2, 3, 4]
    assert costs[5].conditions == 1


def test_changing_a_segment_checks_the_segments_that_name_it():
    segments = {1: group(plan("pro")), 2: group(*[reference(1)] * 10)}

    problems = validate_rule(group(*[plan("pro")] * 100), segments=segments, segment_id=1)

    assert problems.code == "rule_too_complex"
    assert problems["rules"].startswith("Segment 2 references this one")


# REST API -----------------------------------------------------------------------------


def test_post_refuses_a_tenfold_chain_beyond_the_bound_and_writes_nothing(api, workspace):
    links = tenfold_chain(workspace, 1)  # 10 + 10 × 10 = 110 conditions expanded
    before = Segment.objects.count()

    response = api.post(
        "/api/v1/segments",
        {"name": "Too much", "rules": group(*[reference(links[-1].pk)] * 10, match="any")},
    )

    assert too_complex(response) == {"rules": response.json()["error"]["fields"]["rules"]}
    assert Segment.objects.count() == before


def test_put_refuses_a_change_that_pushes_a_referencing_segment_beyond(api, workspace):
    base = SegmentFactory(workspace=workspace, rules=group(plan("pro")))
    user = SegmentFactory(workspace=workspace, rules=group(*[reference(base.pk)] * 10))

    response = api.put(
        f"/api/v1/segments/{base.pk}", {"name": "Base", "rules": group(*[plan("pro")] * 100)}
    )

    assert f"Segment {user.pk}" in too_complex(response)["rules"]
    base.refresh_from_db()
    assert base.rules == group(plan("pro"))


def test_a_rule_naming_a_chain_of_300_segments_is_refused_not_a_500(api, workspace):
    previous = SegmentFactory(workspace=workspace, rules=group(plan("pro")))
    for _ in range(299):
        previous = SegmentFactory(workspace=workspace, rules=group(reference(previous.pk)))

    response = api.post(
        "/api/v1/segments", {"name": "Deep", "rules": group(reference(previous.pk))}
    )

    assert "10 deep" in too_complex(response)["rules"]


def test_preview_refuses_a_rule_beyond_the_bound(api, workspace):
    links = tenfold_chain(workspace, 1)

    response = api.post(
        "/api/v1/segments/preview", {"rules": group(*[reference(links[-1].pk)] * 10)}
    )

    too_complex(response)


def test_a_stored_segment_beyond_the_bound_counts_no_one_and_the_list_answers(
    api, workspace, caplog
):
    ContactFactory(workspace=workspace, traits={"plan": "1"})
    links = tenfold_chain(workspace, 4)  # 10**4 references to the first segment

    response = api.get("/api/v1/segments")

    assert response.status_code == 200
    counts = {row["id"]: row["contact_count"] for row in response.json()["results"]}
    assert counts[links[0].pk] == 1
    assert counts[links[1].pk] == 1  # 110 conditions: within the bound
    assert counts[links[-1].pk] == 0
    assert f"Segment {links[-1].pk} is missing, on a cycle" in caplog.text


# Dashboard ----------------------------------------------------------------------------


def test_the_editor_refuses_to_save_a_rule_beyond_the_bound(owner, workspace):
    links = tenfold_chain(workspace, 1)
    before = Segment.objects.count()
    rules = group(*[reference(links[-1].pk)] * 10, match="any")

    response = owner.post(reverse("segment-new"), {"name": "Too much", "rules": json.dumps(rules)})

    assert response.status_code == 400
    assert "With its segment references expanded" in response.content.decode()
    assert Segment.objects.count() == before


def test_the_editor_preview_refuses_a_rule_beyond_the_bound(owner, workspace):
    links = tenfold_chain(workspace, 1)
    rules = group(*[reference(links[-1].pk)] * 10, match="any")

    response = owner.post(reverse("segment-preview"), {"rules": json.dumps(rules)})

    assert response.status_code == 200
    assert "With its segment references expanded" in response.content.decode()
