"""Racing segment saves never store a cycle (SPEC §3.5): real threads, PostgreSQL.

Skipped on SQLite for the reason given in tests/test_concurrency.py.
"""

import json

import pytest
from django.test import Client

from segments.rules import find_unusable
from segments.services import segment_definitions
from tests.factories import SegmentFactory, WorkspaceFactory
from tests.workers import RACES, at_once

pytestmark = RACES


def put_reference(workspace, segment_id: int, referenced: int) -> int:
    condition = {"type": "segment", "segment": referenced, "operator": "in"}
    rules = {"type": "group", "match": "all", "conditions": [condition]}
    response = Client().put(
        f"/api/v1/segments/{segment_id}",
        json.dumps({"name": f"Segment {segment_id}", "rules": rules}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {workspace.secret_key}"},
    )
    return response.status_code


@pytest.mark.parametrize("size", [2, 10])
def test_racing_saves_that_would_close_a_ring_store_no_cycle(size):
    # Each save alone is sound; together they close the ring. A lone save sees no cycle
    # unless it reads the others' committed changes, which only serialised saves do.
    workspace = WorkspaceFactory()
    ring = [SegmentFactory(workspace=workspace).pk for _ in range(size)]

    statuses = at_once(size, lambda i: put_reference(workspace, ring[i], ring[(i + 1) % size]))

    assert sorted(statuses) == [200] * (size - 1) + [400]
    assert find_unusable(segment_definitions(workspace.pk)) == frozenset()
