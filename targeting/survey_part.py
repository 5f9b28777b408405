"""A survey's targeting as a part of its REST body, registered with `surveys.parts`."""

from typing import Any

from refiner.models import Workspace
from surveys.models import Survey
from surveys.parts import SurveyPart
from targeting.models import Targeting
from targeting.services import apply_targeting, clean_targeting


def _to_dict(survey: Survey) -> dict | None:
    targeting = getattr(survey, "targeting", None)
    return targeting.to_dict() if targeting is not None else None


def _clean(data: dict, *, workspace: Workspace, survey: Survey | None) -> dict:
    """The targeting of the body; on PUT an object changes only the keys it names."""
    given = data.get("targeting", {})
    current = _to_dict(survey) if survey is not None else None
    merged = {**(current or {}), **given} if isinstance(given, dict) else given
    return clean_targeting(merged, workspace=workspace)


def _save(survey: Survey, cleaned: Any) -> None:
    if cleaned is not None:
        apply_targeting(survey, cleaned)
    elif not Targeting.objects.filter(survey=survey).exists():
        Targeting.objects.create(survey=survey)


PART = SurveyPart(
    key="targeting",
    select_related=("targeting",),
    prefetch_related=("targeting__segments", "targeting__excluded_segments"),
    to_dict=_to_dict,
    clean=_clean,
    save=_save,
)
