"""Dashboard pages of the workspace itself: home, switcher, settings, install."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from refiner.forms import AddMemberForm, RoleForm, WorkspaceSettingsForm
from refiner.models import Membership
from refiner.workspaces import SESSION_KEY, memberships_of, require_membership


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect("segment-list")


@login_required
@require_POST
def switch_workspace(request: HttpRequest) -> HttpResponse:
    """Work in another workspace; only one the user is a member of."""
    raw = request.POST.get("workspace", "")
    chosen = next((m for m in memberships_of(request.user) if str(m.workspace_id) == raw), None)
    if chosen is None:
        raise Http404("You are not a member of that workspace.")
    request.session[SESSION_KEY] = chosen.workspace_id
    if request.htmx:
        return HttpResponseClientRedirect("/")
    return redirect("home")


def _get_member_for_owner(request: HttpRequest, pk: int) -> Membership:
    owner = require_membership(request, manage=True)
    member = Membership.objects.filter(workspace=owner.workspace, pk=pk).first()
    if member is None:
        raise Http404("There is no such member in this workspace.")
    return member


def _owners_left(member: Membership, new_role: str | None) -> bool:
    """Whether the workspace keeps an owner after `member` gets `new_role` (None: removed)."""
    if member.role != Membership.OWNER or new_role == Membership.OWNER:
        return True
    others = Membership.objects.filter(workspace=member.workspace_id, role=Membership.OWNER)
    return others.exclude(pk=member.pk).exists()


@login_required
def workspace_settings(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, manage=request.method == "POST")
    workspace = membership.workspace
    form = WorkspaceSettingsForm(request.POST or None, instance=workspace)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Settings saved.")
        return redirect("settings")
    context = {
        "form": form,
        "members": workspace.memberships.select_related("user").order_by("user__email"),
        "add_member_form": AddMemberForm(workspace=workspace),
        "roles": Membership.ROLES,
    }
    return render(request, "refiner/settings.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def rotate_keys(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, manage=True)
    which = request.POST.get("key")
    if which not in ("widget", "secret"):
        messages.error(request, "Choose which key to rotate.")
        return redirect("settings")
    membership.workspace.rotate_keys(widget=which == "widget", secret=which == "secret")
    messages.success(
        request,
        f"New {which} key issued; the old one stopped working. Update your "
        + ("widget snippet." if which == "widget" else "servers."),
    )
    return redirect("settings")


@login_required
@require_POST
def member_add(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, manage=True)
    form = AddMemberForm(request.POST, workspace=membership.workspace)
    if form.is_valid():
        Membership.objects.create(
            workspace=membership.workspace,
            user=form.cleaned_data["user"],
            role=form.cleaned_data["role"],
        )
        messages.success(request, f"Added {form.cleaned_data['email']}.")
    else:
        problems = "; ".join(e for errors in form.errors.values() for e in errors)
        messages.error(request, f"Could not add the member: {problems}")
    return redirect("settings")


@login_required
@require_POST
def member_role(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():
        member = _get_member_for_owner(request, pk)
        form = RoleForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose owner, editor or viewer.")
        elif not _owners_left(member, form.cleaned_data["role"]):
            messages.error(request, "A workspace needs at least one owner.")
        else:
            member.role = form.cleaned_data["role"]
            member.save(update_fields=["role"])
            messages.success(request, f"{member.user.email or member.user} is now {member.role}.")
    return redirect("settings")


@login_required
@require_POST
def member_remove(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():
        member = _get_member_for_owner(request, pk)
        if not _owners_left(member, None):
            messages.error(request, "A workspace needs at least one owner.")
        else:
            member.delete()
            messages.success(request, f"Removed {member.user.email or member.user}.")
    return redirect("settings")


@login_required
@require_GET
def install(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    context = {
        "widget_url": request.build_absolute_uri(static("refiner/widget.js")),
        "show_secret": membership.can_manage,
    }
    return render(request, "refiner/install.html", context)
