"""REST API of webhook endpoints and their delivery log (docs/api.md, "Webhooks")."""

import uuid

import pytest
from django_tasks_db.models import DBTaskResult

from tests.clients import ApiClient
from tests.factories import EndpointFactory
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

NEW = {"url": "https://hooks.example.com/refiner", "events": ["survey.completed"]}


def a_delivery(endpoint: Endpoint, status: str = Delivery.FAILED) -> Delivery:
    event_id = uuid.uuid4()
    return Delivery.objects.create(
        event_id=event_id,
        endpoint=endpoint,
        workspace=endpoint.workspace,
        event="survey.completed",
        payload={"id": str(event_id), "type": "survey.completed", "data": {"user_id": "u-1"}},
        status=status,
        attempts=8,
        response_code=500,
        error="HTTP 500",
    )


def test_it_creates_an_endpoint_with_a_generated_secret(api, workspace):
    response = api.post("/api/v1/webhooks", NEW | {"format": "slack"})

    assert response.status_code == 201
    body = response.json()
    assert body["url"] == NEW["url"] and body["events"] == ["survey.completed"]
    assert body["format"] == "slack" and body["is_active"] is True
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 30
    assert Endpoint.objects.get(workspace=workspace).secret == body["secret"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["survey.completed"]}, "url"),
        (NEW | {"url": "ftp://hooks.example.com/x"}, "url"),
        (NEW | {"url": "http://127.0.0.1:9000/x"}, "url"),
        (NEW | {"url": "http://[::1]/x"}, "url"),
        (NEW | {"url": "http://hooks.example.com:99999/x"}, "url"),
        (NEW | {"url": 5}, "url"),
        ({"url": NEW["url"]}, "events"),
        (NEW | {"events": []}, "events"),
        (NEW | {"events": ["survey.answered"]}, "events"),
        (NEW | {"events": ["survey.completed", "survey.completed"]}, "events"),
        (NEW | {"events": "survey.completed"}, "events"),
        (NEW | {"format": "xml"}, "format"),
        (NEW | {"is_active": "yes"}, "is_active"),
        (NEW | {"secret": "mine"}, "secret"),
    ],
)
def test_bad_input_gets_the_error_body_and_writes_nothing(api, body, field):
    response = api.post("/api/v1/webhooks", body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert not Endpoint.objects.exists()


def test_a_body_that_is_not_json_is_refused(api):
    response = api.post("/api/v1/webhooks", raw=b"{nope")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_it_lists_reads_changes_and_deletes_its_endpoints(api, workspace):
    endpoint = EndpointFactory(workspace=workspace)

    listed = api.get("/api/v1/webhooks").json()
    changed = api.patch(
        f"/api/v1/webhooks/{endpoint.pk}",
        {"is_active": False, "events": ["survey.dismissed", "survey.displayed"]},
    )
    read = api.get(f"/api/v1/webhooks/{endpoint.pk}").json()
    deleted = api.delete(f"/api/v1/webhooks/{endpoint.pk}")

    assert [e["id"] for e in listed["results"]] == [endpoint.pk] and listed["count"] == 1
    assert changed.status_code == 200
    # Events are kept in the documented order, whatever order they were sent in.
    assert read["events"] == ["survey.displayed", "survey.dismissed"]
    assert read["is_active"] is False and read["url"] == endpoint.url
    assert deleted.status_code == 204 and not Endpoint.objects.exists()


def test_a_bad_change_changes_nothing(api, workspace):
    endpoint = EndpointFactory(workspace=workspace)

    response = api.patch(f"/api/v1/webhooks/{endpoint.pk}", {"is_active": False, "url": "nope"})

    assert response.status_code == 400 and "url" in response.json()["error"]["fields"]
    endpoint.refresh_from_db()
    assert endpoint.is_active is True


def test_a_new_secret_replaces_the_old_one(api, workspace):
    endpoint = EndpointFactory(workspace=workspace)

    response = api.post(f"/api/v1/webhooks/{endpoint.pk}/secret")

    assert response.status_code == 200
    assert response.json()["secret"] != endpoint.secret
    endpoint.refresh_from_db()
    assert endpoint.secret == response.json()["secret"]


def test_the_delivery_log_shows_status_attempts_and_response_code(api, workspace):
    endpoint = EndpointFactory(workspace=workspace)
    delivery = a_delivery(endpoint)

    body = api.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries").json()

    (row,) = body["results"]
    assert row["id"] == delivery.pk and row["event"] == "survey.completed"
    assert (row["status"], row["attempts"], row["response_code"]) == ("failed", 8, 500)
    assert row["error"] == "HTTP 500" and row["payload"]["data"] == {"user_id": "u-1"}


def test_redeliver_queues_the_same_event_as_a_new_delivery(
    api, workspace, django_capture_on_commit_callbacks
):
    endpoint = EndpointFactory(workspace=workspace)
    delivery = a_delivery(endpoint)

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/redeliver")

    assert response.status_code == 201
    again = Delivery.objects.get(pk=response.json()["id"])
    assert again.pk != delivery.pk and again.status == Delivery.PENDING and again.attempts == 0
    assert again.event_id == delivery.event_id and again.payload == delivery.payload
    assert DBTaskResult.objects.filter(args_kwargs__args=[again.pk]).count() == 1


def test_a_paused_endpoint_cannot_redeliver(api, workspace):
    endpoint = EndpointFactory(workspace=workspace, is_active=False)
    delivery = a_delivery(endpoint)

    response = api.post(f"/api/v1/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/redeliver")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "endpoint_inactive"
    assert Delivery.objects.count() == 1


def test_an_outsider_key_gets_404_for_every_endpoint_url(outsider_api, workspace):
    endpoint = EndpointFactory(workspace=workspace)
    delivery = a_delivery(endpoint)
    base = f"/api/v1/webhooks/{endpoint.pk}"

    calls = [
        outsider_api.get(base),
        outsider_api.patch(base, {"is_active": False}),
        outsider_api.delete(base),
        outsider_api.post(f"{base}/secret"),
        outsider_api.get(f"{base}/deliveries"),
        outsider_api.post(f"{base}/deliveries/{delivery.pk}/redeliver"),
    ]

    assert [c.status_code for c in calls] == [404] * 6
    assert outsider_api.get("/api/v1/webhooks").json()["results"] == []
    endpoint.refresh_from_db()
    assert endpoint.is_active and Delivery.objects.count() == 1


def test_a_delivery_of_another_endpoint_is_not_found(api, workspace):
    mine, other = EndpointFactory(workspace=workspace), EndpointFactory(workspace=workspace)
    delivery = a_delivery(other)

    response = api.post(f"/api/v1/webhooks/{mine.pk}/deliveries/{delivery.pk}/redeliver")

    assert response.status_code == 404


def test_no_key_gets_401(workspace):
    response = ApiClient(None).get("/api/v1/webhooks")

    assert response.status_code == 401
