import pytest

from segments.memory import matches
from segments.models import Contact
from segments.services import rule_contacts, snapshot_of
from tests.factories import ContactFactory, EventFactory

pytestmark = pytest.mark.django_db


def both(workspace, rule, now):
    sql = set(rule_contacts(workspace.pk, rule, now).values_list("user_id", flat=True))
    memory = {
        c.user_id
        for c in Contact.objects.filter(workspace=workspace)
        if matches(rule, snapshot_of(c), now)
    }
    assert sql == memory
    return sql


def test_smoke(workspace, now):
    a = ContactFactory(workspace=workspace, user_id="a", traits={"plan": "Enterprise", "n": "12.0"})
    ContactFactory(workspace=workspace, user_id="b", traits={"plan": "free", "n": 3})
    for _ in range(5):
        EventFactory(contact=a, occurred_at=now)
    rule = {
        "type": "group",
        "match": "all",
        "conditions": [
            {"type": "attribute", "attribute": "plan", "operator": "contains", "value": "Enter"},
            {"type": "attribute", "attribute": "n", "operator": "equals", "value": 12},
            {
                "type": "event",
                "event": "report_exported",
                "operator": "at_least",
                "value": 5,
                "within_days": 30,
            },
        ],
    }
    assert both(workspace, rule, now) == {"a"}
    rule["conditions"][0]["value"] = "enter"
    assert both(workspace, rule, now) == set()
    rule["conditions"][0]["ignore_case"] = True
    assert both(workspace, rule, now) == {"a"}
    rule = {
        "type": "group",
        "match": "any",
        "conditions": [
            {"type": "group", "match": "all", "conditions": []},
            {"type": "attribute", "attribute": "plan", "operator": "ends_with", "value": "ree"},
        ],
    }
    assert both(workspace, rule, now) == {"a", "b"}
    rule = {
        "type": "group",
        "match": "all",
        "conditions": [
            {"type": "event", "event": "report_exported", "operator": "exactly", "value": 0},
        ],
    }
    assert both(workspace, rule, now) == {"b"}
