"""REST API of the workspace itself (SPEC §5.2)."""

from django.http import HttpRequest, JsonResponse

from refiner.http import api, authorize, json_body
from refiner.models import Workspace
from refiner.workspace_settings import clean_settings


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
