"""Dashboard pages of webhook endpoints: list, add, edit, delete, delivery log, redeliver."""

import uuid

import pytest
from django.urls import reverse

from tests.factories import EndpointFactory
from webhooks.models import Delivery, Endpoint

pytestmark = pytest.mark.django_db

FORM = {
    "url": "https://hooks.example.com/refiner",
    "events": ["survey.completed", "contact.entered_segment"],
    "format": "json",
    "is_active": "on",
}


def a_delivery(endpoint: Endpoint, **fields) -> Delivery:
    event_id = uuid.uuid4()
    values = {
        "endpoint": endpoint,
        "workspace": endpoint.workspace,
        "event_id": event_id,
        "event": "survey.completed",
        "payload": {"id": str(event_id), "type": "survey.completed", "data": {}},
    }
    return Delivery.objects.create(**(values | fields))


def test_an_owner_adds_an_endpoint_and_sees_its_secret(owner, workspace):
    response = owner.post(reverse("webhook-new"), FORM)

    endpoint = Endpoint.objects.get(workspace=workspace)
    assert response.status_code == 302
    assert response["Location"] == reverse("webhook-edit", kwargs={"pk": endpoint.pk})
    assert endpoint.events == ["survey.completed", "contact.entered_segment"]
    page = owner.get(response["Location"]).content.decode()
    assert endpoint.secret in page


def test_a_bad_form_shows_its_problems_and_writes_nothing(owner):
    response = owner.post(reverse("webhook-new"), FORM | {"url": "http://10.0.0.1/x", "events": []})

    assert response.status_code == 200
    page = response.content.decode()
    assert "private address" in page and "This field is required" in page
    assert not Endpoint.objects.exists()


def test_the_list_shows_each_endpoint_with_its_pending_and_failed_counts(viewer, workspace):
    endpoint = EndpointFactory(workspace=workspace, url="https://hooks.example.com/listed")
    a_delivery(endpoint, status=Delivery.FAILED)
    a_delivery(endpoint, status=Delivery.FAILED)
    a_delivery(endpoint)

    page = viewer.get(reverse("webhook-list")).content.decode()

    assert "https://hooks.example.com/listed" in page
    assert '<td class="num count">1</td>' in page and '<td class="num count">2</td>' in page
    assert reverse("webhook-new") not in page


def test_an_owner_changes_and_pauses_an_endpoint(owner, workspace):
    endpoint = EndpointFactory(workspace=workspace)

    form = {
        "url": "https://other.example.com/in",
        "events": ["survey.dismissed"],
        "format": "slack",
    }
    response = owner.post(reverse("webhook-edit", kwargs={"pk": endpoint.pk}), form)

    endpoint.refresh_from_db()
    assert response.status_code == 302
    assert endpoint.url == "https://other.example.com/in" and endpoint.format == "slack"
    assert endpoint.events == ["survey.dismissed"] and endpoint.is_active is False


def test_a_viewer_reads_the_endpoint_but_neither_its_secret_nor_a_way_to_change_it(
    viewer, workspace
):
    endpoint = EndpointFactory(workspace=workspace, url="https://hooks.example.com/kept")

    page = viewer.get(reverse("webhook-edit", kwargs={"pk": endpoint.pk})).content.decode()
    posted = viewer.post(reverse("webhook-edit", kwargs={"pk": endpoint.pk}), FORM)
    added = viewer.post(reverse("webhook-new"), FORM)

    assert endpoint.url in page and endpoint.secret not in page
    assert "Only owners can see the secret" in page
    assert posted.status_code == 403 and added.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.url.endswith("/kept") and Endpoint.objects.count() == 1


def test_an_owner_makes_a_new_secret(owner, workspace):
    endpoint = EndpointFactory(workspace=workspace)
    old = endpoint.secret

    owner.post(reverse("webhook-secret", kwargs={"pk": endpoint.pk}))

    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret.startswith("whsec_")


def test_an_owner_deletes_an_endpoint_after_confirming(owner, workspace):
    endpoint = EndpointFactory(workspace=workspace)
    a_delivery(endpoint)
    url = reverse("webhook-delete", kwargs={"pk": endpoint.pk})

    confirm = owner.get(url)
    response = owner.post(url)

    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert response.status_code == 302
    assert not Endpoint.objects.exists() and not Delivery.objects.exists()


def test_the_delivery_log_shows_status_attempts_response_code_and_problem(owner, workspace):
    endpoint = EndpointFactory(workspace=workspace)
    failed = a_delivery(
        endpoint, status=Delivery.FAILED, attempts=8, response_code=503, error="HTTP 503"
    )
    a_delivery(endpoint, status=Delivery.SUCCEEDED, attempts=1, response_code=204)

    page = owner.get(reverse("webhook-deliveries", kwargs={"pk": endpoint.pk})).content.decode()
    only_failed = owner.get(
        reverse("webhook-deliveries", kwargs={"pk": endpoint.pk}), {"status": "failed"}
    ).content.decode()

    assert "Failed" in page and "Delivered" in page
    assert "HTTP 503" in page and ">503<" in page and ">204<" in page
    assert '<td class="num count">8</td>' in page
    assert (
        reverse("webhook-redeliver", kwargs={"pk": endpoint.pk, "delivery_id": failed.pk}) in page
    )
    assert ">204<" not in only_failed and ">503<" in only_failed


def test_the_log_filter_answers_htmx_with_the_table_only(owner, workspace):
    endpoint = EndpointFactory(workspace=workspace)

    response = owner.get(
        reverse("webhook-deliveries", kwargs={"pk": endpoint.pk}),
        {"status": "failed"},
        headers={"HX-Request": "true"},
    )

    assert response.content.decode().lstrip().startswith('<div id="delivery-table"')
    assert "HX-Request" in response["Vary"]


def test_redeliver_queues_a_new_delivery_of_the_same_event(
    owner, workspace, django_capture_on_commit_callbacks
):
    endpoint = EndpointFactory(workspace=workspace)
    failed = a_delivery(endpoint, status=Delivery.FAILED, attempts=8)
    url = reverse("webhook-redeliver", kwargs={"pk": endpoint.pk, "delivery_id": failed.pk})

    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(url)

    assert response.status_code == 302
    again = Delivery.objects.exclude(pk=failed.pk).get()
    assert again.event_id == failed.event_id and again.status == Delivery.PENDING


def test_a_viewer_cannot_redeliver(viewer, workspace):
    endpoint = EndpointFactory(workspace=workspace)
    failed = a_delivery(endpoint, status=Delivery.FAILED)
    url = reverse("webhook-redeliver", kwargs={"pk": endpoint.pk, "delivery_id": failed.pk})

    assert viewer.post(url).status_code == 403
    assert Delivery.objects.count() == 1


def test_an_outsider_gets_404_on_every_page_of_an_endpoint(outsider, workspace):
    endpoint = EndpointFactory(workspace=workspace, url="https://hooks.example.com/secret-path")
    delivery = a_delivery(endpoint)
    pk = {"pk": endpoint.pk}

    got = [
        outsider.get(reverse("webhook-edit", kwargs=pk)),
        outsider.post(reverse("webhook-edit", kwargs=pk), FORM),
        outsider.post(reverse("webhook-secret", kwargs=pk)),
        outsider.get(reverse("webhook-delete", kwargs=pk)),
        outsider.post(reverse("webhook-delete", kwargs=pk)),
        outsider.get(reverse("webhook-deliveries", kwargs=pk)),
        outsider.post(reverse("webhook-redeliver", kwargs=pk | {"delivery_id": delivery.pk})),
    ]

    assert [r.status_code for r in got] == [404] * 7
    assert "secret-path" not in outsider.get(reverse("webhook-list")).content.decode()
    endpoint.refresh_from_db()
    assert endpoint.url.endswith("secret-path") and Delivery.objects.count() == 1


def test_the_navigation_links_to_webhooks(viewer):
    page = viewer.get(reverse("webhook-list")).content.decode()

    assert f'href="{reverse("webhook-list")}" aria-current="page"' in page
