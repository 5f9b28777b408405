"""Dashboard pages for segments and contacts (SPEC §6)."""

import json
from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from refiner.fragments import render_fragment
from refiner.http import parse_id, safe_next
from refiner.keyset import keyset_page
from refiner.models import Membership, Workspace
from refiner.workspaces import require_membership
from segments import (
    catalogue,
    counts,
    forms,
    member_import,
    previews,
    rule_editor,
    services,
    tasks,
)
from segments.models import Contact, Segment
from segments.registry import survey_facts
from segments.retention import rule_warnings
from segments.rules import BUILTIN_FIELDS
from segments.uses import segment_users, segment_uses

CONTACTS_PER_PAGE = 25
MEMBERS_PER_PAGE = 50
SUGGESTIONS = 500


def _get_segment_for_user(request: HttpRequest, pk: int, *, edit: bool = False) -> Segment:
    """The segment in the current workspace; 404 outside it, 403 for a role that may not edit."""
    membership = require_membership(request, edit=edit)
    segment = Segment.objects.filter(workspace=membership.workspace, pk=pk).first()
    if segment is None:
        raise Http404("There is no such segment in this workspace.")
    return segment


def contact_for(request: HttpRequest, user_id: str) -> Contact:
    """The contact of the current workspace; 404 for anybody else's."""
    membership = require_membership(request)
    contacts = Contact.objects.select_related("account")
    contact = contacts.filter(workspace=membership.workspace, user_id=user_id).first()
    if contact is None:
        raise Http404("There is no such contact in this workspace.")
    return contact


# Segment list -----------------------------------------------------------------


@login_required
@require_GET
def segment_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    segments = list(Segment.objects.filter(workspace=membership.workspace))
    uses = segment_uses(membership.workspace, segments)
    rows = [{"segment": s, "uses": uses[s.pk]} for s in segments]
    return render(request, "segments/segment_list.html", {"rows": rows})


@login_required
@require_GET
def segment_size(request: HttpRequest, pk: int) -> HttpResponse:
    """One segment's size now: the list loads each apart, so a slow count holds up no page."""
    segment = _get_segment_for_user(request, pk)
    workspace = require_membership(request).workspace
    row = {"segment": segment, **_size(segment, workspace)}
    return render(request, "segments/segment_list.html#size", {"row": row})


def _size(segment: Segment, workspace: Workspace) -> dict:
    """The segment's size from its open memberships when they are current, with as of
    when; otherwise counted live. A manual list is counted live: one index count."""
    as_of = None if segment.is_manual else counts.current_segments(workspace).get(segment.pk)
    if as_of is None:
        return {"size": services.segment_count(segment, timezone.now())}
    return {"size": counts.segment_count(segment.pk), "as_of": as_of}


# Segment editor ---------------------------------------------------------------


def _suggestions(workspace: Workspace) -> dict:
    return {
        "builtin_fields": BUILTIN_FIELDS,
        **catalogue.names(workspace, limit=SUGGESTIONS),
        **survey_facts().editor_choices(workspace, limit=SUGGESTIONS),
    }


def _choices(workspace: Workspace, segment: Segment | None) -> dict:
    others = Segment.objects.filter(workspace=workspace).exclude(pk=getattr(segment, "pk", None))
    return {
        "kinds": rule_editor.KINDS,
        "matches": rule_editor.MATCH_LABELS,
        "attribute_operators": rule_editor.ATTRIBUTE_OPERATOR_GROUPS,
        "event_operators": rule_editor.EVENT_OPERATOR_LABELS,
        "survey_operators": rule_editor.SURVEY_OPERATOR_LABELS,
        "segment_operators": rule_editor.SEGMENT_OPERATOR_LABELS,
        "segments": list(others.values_list("pk", "name")),
        "max_depth": rule_editor.MAX_DEPTH,
    }


def preview_of(
    workspace: Workspace, rule, segment_id: int | None, now: datetime, *, exact: bool = False
) -> dict:
    """Count and sample of the contacts a rule matches now, or the rule's problems.

    A large workspace's unsaved rule is estimated unless `exact` is asked: the
    fragment then loads the exact count itself, with `exact_vals` (previews).
    Also the rule as JSON, so the editor's JSON panel follows the rule being
    edited, and warnings about names nothing in the workspace has and about event
    windows reaching past what retention keeps.
    """
    errors = services.check_rule(rule, workspace_id=workspace.pk, segment_id=segment_id)
    total = counts.last_identified_contacts(workspace.pk)
    shown = {"rule_json": json.dumps(rule, indent=2, ensure_ascii=False), "total": total}
    if errors:
        return {"errors": errors, **shown}
    found = previews.cached(workspace, rule, segment_id, total)
    if found is None and not exact and previews.estimates_first(total):
        found = previews.estimate(workspace, rule, now, total)
        follow_up = {"rules": json.dumps(rule), "segment_id": str(segment_id or ""), "exact": "1"}
        found["exact_vals"] = json.dumps(follow_up)
    if found is None:
        found = previews.live(workspace, rule, now, total)
    warnings = catalogue.unknown_names(workspace, rule)
    shown["retention_warnings"] = rule_warnings(rule)
    return {**found, "errors": {}, "warnings": warnings, **shown}


def _posted_tree(request: HttpRequest) -> tuple[rule_editor.GroupNode, str | None]:
    """The rule tree from the editor's fields, or from a `rules` JSON field when posted."""
    if "rules" in request.POST:
        rule, problem = rule_editor.parse_rules_json(request.POST["rules"])
        return rule_editor.from_rule(rule), problem
    return rule_editor.tree_from_post(request.POST), None


def _rule_of(request: HttpRequest, tree: rule_editor.GroupNode):
    if "rules" in request.POST:
        return rule_editor.parse_rules_json(request.POST["rules"])[0]
    return rule_editor.to_rule(tree)


def _render_editor(request, membership: Membership, segment, form, tree, errors, status=200):
    now = timezone.now()
    rule = rule_editor.to_rule(tree)
    loose = rule_editor.attach_errors(tree, errors)
    segment_id = getattr(segment, "pk", None)
    uses = segment_uses(membership.workspace, [segment])[segment_id] if segment_id else []
    context = {
        "segment": segment,
        "form_action": reverse("segment-edit", args=[segment_id])
        if segment_id
        else reverse("segment-new"),
        "uses": uses,
        "live_uses": [u for u in uses if u.get("live")],
        "form": form,
        "tree": tree,
        "rule_errors": loose,
        "has_errors": bool(errors),
        "preview": preview_of(membership.workspace, rule, segment_id, now),
        "choices": _choices(membership.workspace, segment),
        "suggestions": _suggestions(membership.workspace),
        "can_edit": membership.can_edit,
        "is_manual": False,
    }
    template = "segments/segment_editor.html"
    if request.POST.get("op"):  # an editing step (add, remove, nest): htmx swaps the editor
        return render_fragment(request, template, "editor", context, status=status)
    return render(request, template, context, status=status)


def _rule_problems(workspace: Workspace, rule, segment: Segment | None, problem) -> dict:
    """The rule's problems, checked under the workspace's segment lock (see lock_segments)."""
    if problem:
        return {"rules": problem}
    services.lock_segments(workspace.pk)
    return services.check_rule(
        rule, workspace_id=workspace.pk, segment_id=getattr(segment, "pk", None)
    )


def _save_rules_segment(request, membership: Membership, segment: Segment | None) -> HttpResponse:
    form = forms.SegmentForm(request.POST, instance=segment)
    tree, problem = _posted_tree(request)
    operation = request.POST.get("op")
    if operation:
        return _render_editor(
            request, membership, segment, form, rule_editor.apply_operation(tree, operation), {}
        )
    rule = _rule_of(request, tree)
    with transaction.atomic():
        errors = _rule_problems(membership.workspace, rule, segment, problem)
        if "rules" not in request.POST:
            # A blank box is a forgotten value, not the empty text (typed as "").
            errors = {**rule_editor.blank_values(tree), **errors}
        valid = form.is_valid() and not errors
        if valid:
            saved = form.save(commit=False)
            saved.workspace, saved.kind, saved.rules = membership.workspace, Segment.RULES, rule
            saved.save()
            tasks.queue_sweep(saved)
    if not valid:
        return _render_editor(request, membership, segment, form, tree, errors, status=400)
    messages.success(request, f"Saved segment “{saved.name}”.")
    return redirect("segment-edit", saved.pk)


@login_required
def segment_new(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, edit=True)
    kind = request.POST.get("kind") or request.GET.get("kind")
    if kind == Segment.MANUAL:
        return _new_manual_segment(request, membership)
    if request.method == "POST":
        return _save_rules_segment(request, membership, None)
    form = forms.SegmentForm()
    return _render_editor(request, membership, None, form, rule_editor.GroupNode(), {})


def _new_manual_segment(request: HttpRequest, membership: Membership) -> HttpResponse:
    form = forms.SegmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        segment = form.save(commit=False)
        segment.workspace, segment.kind, segment.rules = membership.workspace, Segment.MANUAL, None
        segment.save()
        messages.success(
            request, f"Created manual segment “{segment.name}”. Add its members below."
        )
        return redirect("segment-edit", segment.pk)
    context = {"form": form, "segment": None, "is_manual": True, "can_edit": True}
    return render(
        request, "segments/manual_segment.html", context, status=400 if form.errors else 200
    )


@login_required
def segment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _get_segment_for_user(request, pk, edit=request.method == "POST")
    membership = require_membership(request)
    if segment.is_manual:
        return _manual_segment_page(request, membership, segment)
    if request.method == "POST":
        return _save_rules_segment(request, membership, segment)
    form = forms.SegmentForm(instance=segment)
    return _render_editor(
        request, membership, segment, form, rule_editor.from_rule(segment.rules), {}
    )


@login_required
@require_POST
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The live preview fragment for the rule being edited (writes nothing); `exact`
    asks for the exact count after a large workspace's estimate."""
    membership = require_membership(request)
    tree, problem = _posted_tree(request)
    raw_id = request.POST.get("segment_id", "")
    segment_id = parse_id(raw_id)
    if segment_id is not None:
        segment_id = _get_segment_for_user(request, segment_id).pk
    if problem:
        preview = {"errors": {"rules": problem}, "total": 0, "rule_json": None}
    else:
        rule, exact = _rule_of(request, tree), request.POST.get("exact") == "1"
        preview = preview_of(membership.workspace, rule, segment_id, timezone.now(), exact=exact)
    context = {"preview": preview, "segment": None, "live_json": True}
    return render(request, "segments/segment_editor.html#preview", context)


@login_required
@require_http_methods(["GET", "POST"])
def segment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """A page that names what would go (GET), then the deletion itself (POST)."""
    segment = _get_segment_for_user(request, pk, edit=True)
    membership = require_membership(request)
    if request.method == "GET":
        context = {
            "segment": segment,
            "uses": segment_uses(membership.workspace, [segment])[segment.pk],
            "size": services.segment_count(segment, timezone.now()),
        }
        return render(request, "segments/segment_delete.html", context)
    with transaction.atomic():
        users = segment_users(segment)
        if users:
            messages.error(
                request,
                f"“{segment.name}” cannot be deleted: it is used by {', '.join(users)}. "
                "Remove those uses first.",
            )
            return redirect("segment-edit", segment.pk)
        segment.delete()
    messages.success(request, f"Deleted segment “{segment.name}”.")
    return redirect("segment-list")


# Manual segments --------------------------------------------------------------


def _manual_segment_page(request, membership: Membership, segment: Segment) -> HttpResponse:
    form = forms.SegmentForm(request.POST or None, instance=segment)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved segment “{segment.name}”.")
        return redirect("segment-edit", segment.pk)
    members = services.segment_contacts(segment, timezone.now()).order_by("user_id")
    page = Paginator(members, MEMBERS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "segment": segment,
        "page": page,
        "is_manual": True,
        "can_edit": membership.can_edit,
        "uses": segment_uses(membership.workspace, [segment])[segment.pk],
    }
    return render(
        request, "segments/manual_segment.html", context, status=400 if form.errors else 200
    )


def _manual_segment_for_user(request: HttpRequest, pk: int) -> Segment:
    segment = _get_segment_for_user(request, pk, edit=True)
    if not segment.is_manual:
        raise Http404("Only manual segments have members to change.")
    return segment


def _add_user_ids(request: HttpRequest, segment: Segment, user_ids: list[str]) -> None:
    known = set(
        Contact.objects.filter(workspace_id=segment.workspace_id, user_id__in=user_ids).values_list(
            "user_id", flat=True
        )
    )
    added = services.add_members(segment, [u for u in user_ids if u in known])
    unknown = [u for u in dict.fromkeys(user_ids) if u not in known]
    if added:
        messages.success(request, f"Added {added} contact{'s' if added != 1 else ''}.")
    if unknown:
        shown = ", ".join(unknown[:10]) + (" …" if len(unknown) > 10 else "")
        messages.warning(request, f"{len(unknown)} unknown user id(s) skipped: {shown}")


@login_required
@require_POST
def segment_members_add(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _manual_segment_for_user(request, pk)
    user_ids = member_import.user_ids_from_text(request.POST.get("user_ids", ""))
    if not user_ids:
        messages.error(request, "Enter at least one user id.")
    else:
        _add_user_ids(request, segment, user_ids)
    return redirect(safe_next(request, reverse("segment-edit", args=[segment.pk])))


@login_required
@require_POST
def segment_members_import(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _manual_segment_for_user(request, pk)
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a CSV file whose first column holds user ids.")
        return redirect("segment-edit", segment.pk)
    user_ids, problem = member_import.user_ids_from_csv(upload)
    if problem:
        messages.error(request, problem)
    else:
        _add_user_ids(request, segment, user_ids)
    return redirect("segment-edit", segment.pk)


@login_required
@require_POST
def segment_members_remove(request: HttpRequest, pk: int) -> HttpResponse:
    segment = _manual_segment_for_user(request, pk)
    user_ids = request.POST.getlist("user_id")
    removed = services.remove_members(segment, user_ids) if user_ids else 0
    messages.success(request, f"Removed {removed} contact{'s' if removed != 1 else ''}.")
    return redirect(safe_next(request, reverse("segment-edit", args=[segment.pk])))


# Contacts ---------------------------------------------------------------------


def _trait_filter(request: HttpRequest, workspace: Workspace) -> tuple[QuerySet | None, str]:
    """Contacts whose trait equals the value asked for, with the rule language's `equals`.

    The value is read as the editor reads it (`12` a number, `"12"` text), so the
    list shows exactly who a rule "trait equals value" would match. Without a
    value, the contacts that have the trait (what the catalogue links to).
    """
    key = request.GET.get("trait", "").strip()
    if not key:
        return None, ""
    value = request.GET.get("value", "")
    operator = "equals" if value.strip() else "is_set"
    node = rule_editor.ConditionNode(attribute=key, operator=operator, value=value)
    rule = rule_editor.to_rule(rule_editor.GroupNode(children=[node]))
    errors = services.check_rule(rule, workspace_id=workspace.pk)
    if errors:
        return None, " ".join(errors.values())
    return services.rule_contacts(workspace.pk, rule, timezone.now()), ""


def _filtered_contacts(
    request: HttpRequest, workspace: Workspace
) -> tuple[QuerySet, Segment | None, str]:
    segment = None
    segment_id = parse_id(request.GET.get("segment", ""))
    if segment_id is not None:
        segment = Segment.objects.filter(workspace=workspace, pk=segment_id).first()
    if segment is None:
        contacts = Contact.objects.filter(workspace=workspace)
    else:
        contacts = services.segment_contacts(segment, timezone.now())
    query = request.GET.get("q", "").strip()
    if query:
        contacts = contacts.filter(
            Q(user_id__icontains=query) | Q(email__icontains=query) | Q(name__icontains=query)
        )
    with_trait, problem = _trait_filter(request, workspace)
    if with_trait is not None:
        contacts = contacts.filter(pk__in=with_trait.values("pk"))
    return contacts.select_related("account"), segment, problem


@login_required
@require_GET
def trait_catalogue(request: HttpRequest) -> HttpResponse:
    """The traits and events seen in the workspace: the names rules can use."""
    workspace = require_membership(request).workspace
    context = {
        "traits": catalogue.traits(workspace),
        "account_traits": catalogue.account_traits(workspace),
        "events": catalogue.events(workspace),
        "limit": catalogue.LIMIT,
    }
    return render(request, "segments/catalogue.html", context)


@login_required
@require_GET
def contact_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    contacts, segment, trait_problem = _filtered_contacts(request, membership.workspace)
    page = keyset_page(request, contacts, "last_seen_at", CONTACTS_PER_PAGE)
    context = {
        "page": page,
        "q": request.GET.get("q", ""),
        "trait": request.GET.get("trait", ""),
        "value": request.GET.get("value", ""),
        "trait_problem": trait_problem,
        "trait_keys": catalogue.names(membership.workspace, limit=SUGGESTIONS)["traits"],
        "segment": segment,
        "segments": Segment.objects.filter(workspace=membership.workspace),
    }
    status = 400 if trait_problem else 200
    return render_fragment(request, "segments/contact_list.html", "results", context, status=status)


@login_required
@require_POST
def contact_test(request: HttpRequest) -> HttpResponse:
    """Mark a contact as a test contact (a teammate), or back as a real one.

    The user id travels in the body: a route under contacts/<path:user_id>/ would
    shadow contacts whose id ends like it.
    """
    membership = require_membership(request, edit=True)
    contact = Contact.objects.filter(
        workspace=membership.workspace, user_id=request.POST.get("user_id", "")
    ).first()
    if contact is None:
        raise Http404("There is no such contact in this workspace.")
    contact.is_test = request.POST.get("is_test") == "1"
    contact.save(update_fields=["is_test"])
    note = "left out of results" if contact.is_test else "counted in results again"
    messages.success(request, f"{contact.user_id} is {note}.")
    return redirect("contact-detail", user_id=contact.user_id)
