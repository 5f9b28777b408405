"""Parts of a survey that apps above `surveys` own: its targeting (SPEC §4).

A survey's REST body holds its targeting, but `targeting` sits above `surveys`,
which may not import it (docs/architecture.md). So `targeting` registers its part
when Django starts (`TargetingConfig.ready`): how to read it with the survey, show
it, clean it and save it. `surveys` runs every registered part in turn.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SurveyPart:
    key: str  # the part's key in the survey's REST body
    # Relations to read with a survey, for `Survey.objects.with_parts()`.
    select_related: tuple[str, ...]
    prefetch_related: tuple[str, ...]
    # The part of a survey as the REST API shows it (None: the survey has none yet).
    to_dict: Callable[[Any], dict | None]
    # Clean the part from the survey's body (`survey` None on create); raise `Invalid`.
    clean: Callable[..., Any]
    # Save the cleaned part (None when the body left it alone) of a saved survey.
    save: Callable[[Any, Any], None]


_parts: dict[str, SurveyPart] = {}


def register(part: SurveyPart) -> None:
    _parts[part.key] = part


def survey_parts() -> list[SurveyPart]:
    return list(_parts.values())
