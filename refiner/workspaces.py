"""Which workspace a dashboard request works in, and what the user may do there."""

from django.http import Http404, HttpRequest

from refiner.models import Membership

SESSION_KEY = "workspace_id"


def memberships_of(user) -> list[Membership]:
    if not user.is_authenticated:
        return []
    return list(Membership.objects.filter(user=user).select_related("workspace"))


def current_membership(request: HttpRequest) -> Membership | None:
    """The user's membership in the workspace chosen in the session (or their first)."""
    if hasattr(request, "_membership"):
        return request._membership
    memberships = memberships_of(request.user)
    chosen = request.session.get(SESSION_KEY) if hasattr(request, "session") else None
    membership = next((m for m in memberships if m.workspace_id == chosen), None)
    if membership is None and memberships:
        membership = memberships[0]
    request._membership = membership
    return membership


def require_membership(request: HttpRequest, *, edit: bool = False, manage: bool = False):
    """The current membership; 404 without one, 403-like 404 without the role."""
    membership = current_membership(request)
    if membership is None:
        raise Http404("You are not a member of any workspace.")
    if (edit and not membership.can_edit) or (manage and not membership.can_manage):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Your role does not allow this.")
    return membership


def current_workspace(request: HttpRequest) -> dict:
    """Template context: the workspace switcher's data."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    membership = current_membership(request)
    return {
        "membership": membership,
        "workspace": membership.workspace if membership else None,
        "memberships": memberships_of(request.user),
    }
