"""Rule builders for tests: each returns a node of the rule language (SPEC §3) as the API
takes it, so a test reads as the rule it checks. A builder adds only the keys it is given;
a test of validation passes odd values and extra keys through them on purpose."""

from collections.abc import Iterator


def group(*conditions: dict, match: str = "all") -> dict:
    return {"type": "group", "match": match, "conditions": list(conditions)}


def attribute(key: str, operator: str, *value, **options) -> dict:
    """`value` is optional (`is_set` takes none), so `None` can still be given as one."""
    condition = {"type": "attribute", "attribute": key, "operator": operator, **options}
    if value:
        condition["value"] = value[0]
    return condition


def plan(value) -> dict:
    return attribute("plan", "equals", value)


def plan_is(value) -> dict:
    """The rules of a segment of the contacts on one plan."""
    return group(plan(value))


def event(name: str, operator: str, value, **window) -> dict:
    return {"type": "event", "event": name, "operator": operator, "value": value, **window}


def survey(survey_id, operator: str, **window) -> dict:
    return {"type": "survey", "survey": survey_id, "operator": operator, **window}


def answer(survey_id, question: str, operator: str, *value, **options) -> dict:
    condition = {"type": "answer", "survey": survey_id, "question": question}
    condition |= {"operator": operator, **options}
    if value:
        condition["value"] = value[0]
    return condition


def reference(segment_id, operator: str = "in") -> dict:
    """A condition on membership of another segment."""
    return {"type": "segment", "segment": segment_id, "operator": operator}


def nodes(rule: dict) -> Iterator[dict]:
    """Every node of a rule, groups included, depth first."""
    yield rule
    for child in rule.get("conditions", []):
        yield from nodes(child)
