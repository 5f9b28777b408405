"""REST API of the workspace itself (SPEC §5.2)."""

from django.http import HttpRequest, JsonResponse

from refiner.http import api, authorize, invalid, json_body
from refiner.models import Workspace

MAX_ORIGINS = 100


def clean_settings(data: dict) -> dict:
    """Validate a PATCH of workspace settings; only the given keys change."""
    errors, cleaned = {}, {}
    for key in data:
        if key not in ("name", "identity_verification", "allowed_origins", "recontact_days"):
            errors[key[:100]] = "Is not a workspace setting."
    if "name" in data:
        name = data["name"]
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            errors["name"] = "Must be a name of 1 to 200 characters."
        else:
            cleaned["name"] = name.strip()
    if "identity_verification" in data:
        if not isinstance(data["identity_verification"], bool):
            errors["identity_verification"] = "Must be true or false."
        else:
            cleaned["identity_verification"] = data["identity_verification"]
    if "allowed_origins" in data:
        origins = data["allowed_origins"]
        if (
            not isinstance(origins, list)
            or len(origins) > MAX_ORIGINS
            or not all(
                isinstance(o, str) and o.startswith(("http://", "https://")) and len(o) <= 300
                for o in origins
            )
        ):
            errors["allowed_origins"] = "Must be a list of origins such as https://app.example.com."
        else:
            cleaned["allowed_origins"] = [o.rstrip("/") for o in origins]
    if "recontact_days" in data:
        days = data["recontact_days"]
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= 3650:
            errors["recontact_days"] = "Must be a whole number of days from 0 to 3650."
        else:
            cleaned["recontact_days"] = days
    if errors:
        raise invalid(errors)
    return cleaned


@api(["GET", "PATCH"])
@authorize
def workspace_settings(request: HttpRequest) -> JsonResponse:
    workspace: Workspace = request.workspace
    if request.method == "PATCH":
        for key, value in clean_settings(json_body(request)).items():
            setattr(workspace, key, value)
        workspace.save()
    return JsonResponse(workspace.settings_dict())


@api(["GET"])
def ping(request: HttpRequest) -> JsonResponse:
    """A trivial JSON view: the baseline the benchmarks compare against."""
    return JsonResponse({"ok": True})
