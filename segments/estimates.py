"""How many contacts a rule matches, estimated from a uniform sample of a workspace's.

The segment editor's preview of a large workspace answers with this first, then loads
the exact count (docs/segments.md, "The editor's preview"). The rule is asked of the
sampled contacts by the contact-by-contact compiler (`services.rule_contacts`), so the
estimate means what the count means; the share that match, scaled to the workspace,
is the estimate.

The sample is the `size` identified contacts with the smallest hash of their id
(`hashint8`, PostgreSQL's own hash of an integer). No trait, event or moment has
anything to do with the hash of an id, so for any rule these contacts are as good as
a random draw of that many; and the index `contact_sample` (migration 0015) holds a
workspace's identified contacts in that order, so reading the sample reads `size`
index entries, not the workspace. It is the same sample on every keystroke: the
estimate moves only when the rule does.

The margin is computed from the sample: the half-width of the 95 % interval of the
sampled share (normal approximation, with the finite-population correction). When
no sampled contact matches, or all do, that width would be zero, so the estimate is a
bound instead: the share below which finding none in `n` happens at most 5 % of the
time, `1 - 0.05 ** (1 / n)` (about 3 / n).
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.db.models.expressions import RawSQL

from refiner.replicas import reads_of
from segments import counts, services
from segments.counts import Selection
from segments.models import Contact

CONFIDENCE_Z = 1.96  # 95 %, two-sided
MISS_CHANCE = 0.05  # the one-sided bound when none (or all) of the sample match

SAMPLE = (
    'SELECT "id" FROM "segments_contact" WHERE "workspace_id" = %s AND "user_id" IS NOT NULL '
    'ORDER BY hashint8("id"), "id" LIMIT %s'
)


def sample_size_for(margin: float) -> int:
    """The sample whose 95 % margin is at most `margin` (a share) for any rule: the
    widest is a rule matching half the workspace, 1.96 * sqrt(0.25 / n)."""
    return math.ceil((CONFIDENCE_Z * 0.5 / margin) ** 2)


def _about(number: float) -> int:
    """Rounded half up to three significant digits: 412,500 is about 413,000."""
    step = 10 ** max(0, len(str(int(number))) - 3)
    return int(number / step + 0.5) * step


def _at_most(number: float) -> int:
    """Rounded up to two significant digits: fewer than 748.6 is fewer than about 750."""
    whole = math.ceil(number)
    step = 10 ** max(0, len(str(whole)) - 2)
    return math.ceil(whole / step) * step


@dataclass(frozen=True)
class Estimate:
    """`matched` of `sampled` contacts, drawn uniformly from the workspace's `total`."""

    matched: int
    sampled: int
    total: int

    @property
    def is_exact(self) -> bool:
        return self.sampled >= self.total

    @property
    def none_matched(self) -> bool:
        return self.matched == 0 and not self.is_exact

    @property
    def all_matched(self) -> bool:
        return self.matched == self.sampled and not self.is_exact

    @property
    def share(self) -> float:
        return self.matched / self.sampled if self.sampled else 0.0

    @property
    def count(self) -> int:
        return self.matched if self.is_exact else round(self.share * self.total)

    @property
    def margin(self) -> float:
        """Half the 95 % interval of the share (0 for a bound or the whole workspace)."""
        if self.is_exact or self.none_matched or self.all_matched:
            return 0.0
        spread = math.sqrt(self.share * (1 - self.share) / self.sampled)
        finite = math.sqrt((self.total - self.sampled) / (self.total - 1))
        return CONFIDENCE_Z * spread * finite

    @property
    def bound(self) -> float:
        """How many contacts at most a sample with no match (or no miss) could overlook."""
        return (1 - MISS_CHANCE ** (1 / self.sampled)) * self.total

    @property
    def low(self) -> int:
        if self.none_matched:
            return 0
        if self.all_matched:
            return self.total - math.ceil(self.bound)
        return max(0, self.count - round(self.margin * self.total))

    @property
    def high(self) -> int:
        if self.none_matched:
            return math.ceil(self.bound)
        if self.all_matched:
            return self.total
        return min(self.total, self.count + round(self.margin * self.total))

    @property
    def margin_percent(self) -> str:
        """The margin in points of the workspace, rounded up to a tenth."""
        return f"{math.ceil(self.margin * 1000) / 10:.1f}"

    @property
    def shown(self) -> str:
        if self.is_exact:
            return f"{self.count:,}"
        if self.none_matched:
            return f"fewer than about {_at_most(self.bound):,}"
        if self.all_matched:
            return f"more than about {self.total - _at_most(self.bound):,}"
        return f"about {_about(self.count):,}"


def estimate_of(*, matched: int, sampled: int, total: int) -> Estimate:
    """`total` may be the last sweep's, older than the sample: never fewer than it.
    An empty sample is a workspace with no identified contact left, exactly none."""
    return Estimate(matched=matched, sampled=sampled, total=max(total, sampled) if sampled else 0)


def sample_of(workspace_id: int, size: int) -> RawSQL:
    """The ids of the workspace's sample of `size` identified contacts (see above)."""
    return RawSQL(SAMPLE, [workspace_id, size])  # noqa: S611 (constant SQL, bound parameters)


def rule_estimate(workspace_id: int, rule, now: datetime, total: int, size: int) -> Estimate:
    """How many of the workspace's `total` identified contacts match `rule` at `now`,
    estimated from its sample of `size` (PostgreSQL)."""
    with reads_of(Contact).cursor() as cursor:  # read from the index alone
        cursor.execute(f"SELECT count(*) FROM ({SAMPLE}) AS sample", [workspace_id, size])
        (sampled,) = cursor.fetchone()
    members = services.rule_contacts(workspace_id, rule, now, within=sample_of(workspace_id, size))
    matched = members.count()
    return estimate_of(matched=matched, sampled=sampled, total=total)


def selections_estimate(
    workspace_id: int, wanted: list[list[Selection]], total: int, size: int
) -> list[Estimate]:
    """For each list of selections in `wanted`, how many of the workspace's `total`
    identified contacts are in every one of them, estimated from its sample of `size`
    by their open memberships (PostgreSQL; the segments must be current)."""
    if not wanted:
        return []
    columns, params = [], []
    for selections in wanted:
        terms = []
        for selection in selections:
            found, found_params = counts.selection_terms(selection, "sample.id")
            terms += found
            params += found_params
        columns.append(f"count(*) FILTER (WHERE {' AND '.join(terms) or 'TRUE'})")
    sql = f"SELECT count(*), {', '.join(columns)} FROM ({SAMPLE}) AS sample"
    with reads_of(Contact).cursor() as cursor:
        cursor.execute(sql, [*params, workspace_id, size])
        sampled, *matched = cursor.fetchone()
    return [estimate_of(matched=each, sampled=sampled, total=total) for each in matched]
