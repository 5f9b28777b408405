"""Dashboard pages for webhook endpoints and their delivery log.

Every member sees the endpoints and their log; only owners add, change, delete,
redeliver and see the secrets, as with the workspace's own keys: an endpoint sends the
workspace's answers out of Refiner.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from refiner.fragments import render_fragment
from refiner.workspaces import require_membership
from webhooks import services
from webhooks.forms import EndpointForm, endpoint_initial
from webhooks.models import EVENTS, Delivery, Endpoint, new_endpoint_secret

DELIVERIES_PER_PAGE = 25


def endpoint_for(request: HttpRequest, pk: int, *, manage: bool = False):
    """The membership and one endpoint of the current workspace; 404 for anybody else's."""
    membership = require_membership(request, manage=manage)
    return membership, get_object_or_404(Endpoint, pk=pk, workspace=membership.workspace)


@login_required
@require_GET
def endpoint_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    endpoints = Endpoint.objects.filter(workspace=membership.workspace).annotate(
        failed=Count("deliveries", filter=Q(deliveries__status=Delivery.FAILED)),
        pending=Count("deliveries", filter=Q(deliveries__status=Delivery.PENDING)),
    )
    context = {"endpoints": endpoints, "can_manage": membership.can_manage, "events": EVENTS}
    return render(request, "webhooks/list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_new(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, manage=True)
    form = EndpointForm(request.POST or None, initial={"is_active": True})
    if request.method == "POST" and form.is_valid():
        endpoint = Endpoint.objects.create(workspace=membership.workspace, **form.cleaned_data)
        messages.success(request, "Endpoint added. Its secret signs every request.")
        return redirect("webhook-edit", pk=endpoint.pk)
    return render(request, "webhooks/form.html", {"form": form, "endpoint": None})


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HttpRequest, pk: int) -> HttpResponse:
    membership, endpoint = endpoint_for(request, pk, manage=request.method == "POST")
    form = EndpointForm(request.POST or None, initial=endpoint_initial(endpoint))
    if request.method == "POST" and form.is_valid():
        for key, value in form.cleaned_data.items():
            setattr(endpoint, key, value)
        endpoint.save()
        messages.success(request, "Endpoint saved.")
        return redirect("webhook-edit", pk=endpoint.pk)
    context = {"form": form, "endpoint": endpoint, "can_manage": membership.can_manage}
    return render(request, "webhooks/form.html", context)


@login_required
@require_POST
def endpoint_secret(request: HttpRequest, pk: int) -> HttpResponse:
    _, endpoint = endpoint_for(request, pk, manage=True)
    endpoint.secret = new_endpoint_secret()
    endpoint.save(update_fields=["secret"])
    messages.success(request, "New secret made: update your receiver before the next event.")
    return redirect("webhook-edit", pk=endpoint.pk)


@login_required
@require_http_methods(["GET", "POST"])
def endpoint_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _, endpoint = endpoint_for(request, pk, manage=True)
    if request.method == "POST":
        endpoint.delete()
        messages.success(request, f"Endpoint {endpoint.url} deleted.")
        return redirect("webhook-list")
    return render(request, "webhooks/delete.html", {"endpoint": endpoint})


@login_required
@require_GET
def delivery_log(request: HttpRequest, pk: int) -> HttpResponse:
    membership, endpoint = endpoint_for(request, pk)
    status = request.GET.get("status", "")
    deliveries = endpoint.deliveries.order_by("-created_at", "-id")
    if status in dict(Delivery.STATUSES):
        deliveries = deliveries.filter(status=status)
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "endpoint": endpoint,
        "page": page,
        "status": status,
        "statuses": [("", "All"), *Delivery.STATUSES],
        "can_manage": membership.can_manage,
    }
    return render_fragment(request, "webhooks/deliveries.html", "delivery-table", context)


@login_required
@require_POST
def delivery_redeliver(request: HttpRequest, pk: int, delivery_id: int) -> HttpResponse:
    _, endpoint = endpoint_for(request, pk, manage=True)
    delivery = get_object_or_404(Delivery, pk=delivery_id, endpoint=endpoint)
    if endpoint.is_active:
        services.redeliver(delivery)
        messages.success(request, f"The {delivery.event} event is queued again.")
    else:
        messages.error(request, "The endpoint is not active: activate it to redeliver.")
    return redirect("webhook-deliveries", pk=endpoint.pk)
