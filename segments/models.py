from django.db import models
from django.utils import timezone

from refiner.models import Workspace
from segments.values import iso, parse_value


class ParsedValueFields(models.Model):
    """A raw value's parsed forms (see segments.values): what SQL compares."""

    key = models.CharField(max_length=100)
    text = models.TextField(null=True, blank=True)
    text_folded = models.TextField(null=True, blank=True)
    num = models.FloatField(null=True, blank=True)
    date = models.DateTimeField(null=True, blank=True)
    boolean = models.BooleanField(null=True, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.key}={self.text if self.text is not None else self.num}"

    def set_parsed(self, raw) -> None:
        for field, value in parse_value(raw).as_fields().items():
            setattr(self, field, value)


class Account(models.Model):
    """A company, shared by the contacts that name it."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="accounts")
    external_id = models.CharField("account id", max_length=200)
    name = models.CharField(max_length=200, blank=True, null=True)
    traits = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workspace", "external_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "external_id"], name="unique_account_id")
        ]

    def __str__(self) -> str:
        return self.name or self.external_id

    def attributes(self) -> dict:
        """Built-in fields and traits, as rules see them (missing keys left out)."""
        values = {"id": self.external_id, "name": self.name, **self.traits}
        return {key: value for key, value in values.items() if value is not None}

    def to_dict(self) -> dict:
        return {"id": self.external_id, "name": self.name, "traits": self.traits}


class IdentifiedContacts(models.Manager):
    """Contacts with a user id: what segments, counts, lists and the REST API see.

    Anonymous visitors (docs/decisions.md) are rows of the same table, so that their
    displays and responses need no second home, but no rule matches them and no list
    shows them: being the default manager, this filter is where every such query starts.
    """

    def get_queryset(self) -> models.QuerySet:
        return super().get_queryset().filter(user_id__isnull=False)


class Contact(models.Model):
    """A user of the customer's product: identified, or an anonymous visitor of the widget."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="contacts")
    # NULL for an anonymous visitor, whose id lives in its own column: a user id and
    # an anonymous id can never name the same row, whatever their texts.
    user_id = models.CharField(max_length=200, null=True, blank=True)
    anonymous_id = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        help_text="The widget's id of a visitor who is not signed in (user id empty).",
    )
    email = models.CharField(max_length=320, blank=True, null=True)
    name = models.CharField(max_length=200, blank=True, null=True)
    traits = models.JSONField(default=dict, blank=True)
    account = models.ForeignKey(
        Account, models.SET_NULL, null=True, blank=True, related_name="contacts"
    )
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    # db_default too: bulk loads and raw inserts that name their columns need not know it.
    is_test = models.BooleanField(
        "test contact",
        default=False,
        db_default=False,
        help_text="A teammate trying surveys out: left out of results unless asked for.",
    )

    objects = IdentifiedContacts()
    # Anonymous visitors included: the widget's own lookups, locks and merges.
    all_contacts = models.Manager()  # noqa: DJ012 - a manager the rule takes for a field

    class Meta:
        ordering = ["workspace", "user_id"]
        # Related lookups (display.contact) must reach anonymous visitors too.
        base_manager_name = "all_contacts"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user_id"], name="unique_contact_user_id"),
            models.UniqueConstraint(
                fields=["workspace", "anonymous_id"], name="unique_contact_anonymous_id"
            ),
            models.CheckConstraint(
                condition=models.Q(user_id__isnull=False, anonymous_id__isnull=True)
                | models.Q(user_id__isnull=True, anonymous_id__isnull=False),
                name="contact_user_or_anonymous",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "-last_seen_at"], name="contact_recent"),
            # Results leave test contacts out: the few of a workspace, found without a scan.
            models.Index(
                fields=["workspace"], condition=models.Q(is_test=True), name="contact_test"
            ),
        ]

    def __str__(self) -> str:
        return self.email or self.user_id or "Anonymous visitor"

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    def attributes(self) -> dict:
        """Built-in fields and traits, as rules see them (missing keys left out)."""
        values = {
            **self.traits,
            "user_id": self.user_id,
            "email": self.email,
            "name": self.name,
            "first_seen_at": iso(self.first_seen_at),
            "last_seen_at": iso(self.last_seen_at),
        }
        return {key: value for key, value in values.items() if value is not None}

    def to_dict(self) -> dict:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "name": self.name,
            "traits": self.traits,
            "account": self.account.to_dict() if self.account_id else None,
            "first_seen_at": iso(self.first_seen_at),
            "last_seen_at": iso(self.last_seen_at),
        }


class ContactValue(ParsedValueFields):
    """One attribute of a contact (built-in or trait), parsed for SQL."""

    # No single-column indexes: the unique (contact, key) and the (workspace, key, …)
    # indexes cover both foreign keys, and each extra index slows every write.
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, models.CASCADE, related_name="values", db_index=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "key"], name="one_value_per_contact_key")
        ]
        indexes = [
            models.Index(fields=["workspace", "key", "num"], name="contactvalue_num"),
            models.Index(fields=["workspace", "key", "date"], name="contactvalue_date"),
        ]


class AccountValue(ParsedValueFields):
    """One attribute of an account (id, name or trait), parsed for SQL."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+")
    account = models.ForeignKey(Account, models.CASCADE, related_name="values")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "key"], name="one_value_per_account_key")
        ]
        # The catalogue walks a workspace's keys one index probe each (segments.distinct).
        indexes = [models.Index(fields=["workspace", "key"], name="accountvalue_key")]


class Event(models.Model):
    """A named thing a contact did, with a timestamp."""

    # Covered by the two composite indexes below, which lead with these columns.
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="events", db_index=False)
    contact = models.ForeignKey(Contact, models.CASCADE, related_name="events", db_index=False)
    name = models.CharField(max_length=200)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at"]
        indexes = [
            models.Index(fields=["contact", "name", "occurred_at"], name="event_contact_name"),
            models.Index(fields=["workspace", "name", "occurred_at"], name="event_workspace_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.occurred_at:%Y-%m-%d %H:%M}"

    def to_dict(self) -> dict:
        return {"event": self.name, "occurred_at": iso(self.occurred_at)}


class EventTotal(models.Model):
    """How many events of one name a contact has, for counts over all time.

    Kept true by triggers on the event table (segments.totals), so every writer of
    events keeps it without knowing; never written by Python, nor backed up.
    """

    # Covered by the unique (contact, name) and the (workspace, name, count) index.
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(Contact, models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=200)
    count = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "name"], name="one_total_per_contact_event")
        ]
        # Set-based counts read one name's totals of a workspace, by range of count. On
        # PostgreSQL the index also carries each total's contact and moments (INCLUDE,
        # migration 0020), so those counts read it alone.
        indexes = [models.Index(fields=["workspace", "name", "count"], name="eventtotal_count")]

    def __str__(self) -> str:
        return f"{self.name} × {self.count}"


class Segment(models.Model):
    """A named, saved rule over contacts, or a named list of contacts."""

    RULES, MANUAL = "rules", "manual"
    KINDS = [(RULES, "Data-driven (rules)"), (MANUAL, "Manual list")]

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="segments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=KINDS, default=RULES)
    rules = models.JSONField(
        null=True, blank=True, help_text="The rule document (SPEC §3); only for data-driven."
    )
    members = models.ManyToManyField(Contact, through="SegmentMember", related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    members_as_of = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a sweep last compared or confirmed the segment's open memberships; "
        "they are its members as of then unless a segment it uses changed after "
        "(segments.counts).",
    )

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_manual(self) -> bool:
        return self.kind == self.MANUAL


class SegmentMember(models.Model):
    """A contact in a manual segment."""

    segment = models.ForeignKey(Segment, models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(Contact, models.CASCADE, related_name="segment_memberships")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="unique_segment_member")
        ]
        indexes = [models.Index(fields=["contact", "segment"], name="member_contact")]

    def __str__(self) -> str:
        return f"{self.contact} in {self.segment}"


class SegmentMembership(models.Model):
    """A stretch of time a contact spent in a segment: open while `left_at` is empty.

    Recorded by `segments.membership` when the contact's data changes and by the
    sweep for rules that change with time alone.
    """

    # Covered by the indexes below, which lead with these columns.
    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(
        Contact, models.CASCADE, related_name="segment_history", db_index=False
    )
    segment = models.ForeignKey(Segment, models.CASCADE, related_name="history", db_index=False)
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-entered_at", "-id"]
        constraints = [
            # One open stretch per contact and segment: it is also the index that finds the
            # contact's open memberships, and what makes a racing second entry a no-op.
            models.UniqueConstraint(
                fields=["contact", "segment"],
                condition=models.Q(left_at__isnull=True),
                name="one_open_membership",
            )
        ]
        indexes = [
            models.Index(fields=["segment", "entered_at"], name="membership_entries"),
            models.Index(fields=["segment", "left_at"], name="membership_exits"),
            models.Index(fields=["contact", "entered_at"], name="membership_of_contact"),
            # A segment's members as recorded, read without the table: cached counts and
            # the audiences' set operations (segments.counts).
            models.Index(
                fields=["segment", "contact"],
                condition=models.Q(left_at__isnull=True),
                name="open_members",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.segment_id} from {self.entered_at:%Y-%m-%d %H:%M}"


class MembershipSweep(models.Model):
    """One run of the sweep (`manage.py sweep_segments`) over one workspace: when, and
    what it found. The next run compares segments edited since this one started."""

    workspace = models.ForeignKey(Workspace, models.CASCADE, related_name="+", db_index=False)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    segments = models.PositiveIntegerField(default=0)
    entries = models.PositiveIntegerField(default=0)
    exits = models.PositiveIntegerField(default=0)
    # The workspace's identified contacts when it began: "of N contacts" beside counts
    # read from memberships, as of the same moment (a count of a million rows otherwise).
    contacts = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["workspace", "started_at"], name="sweep_of_workspace")]

    def __str__(self) -> str:
        return f"sweep at {self.started_at:%Y-%m-%d %H:%M}"


class MemberSet(models.Model):
    """A segment's open memberships as a set of bits, read at some moment after `as_of`:
    bit i is contact `first_contact_id + i`. The memberships opened or closed after
    `as_of` are read with it, so the set plus those changes is the members now
    (`segments.member_sets`): audience counts become bit arithmetic.
    """

    segment = models.OneToOneField(
        Segment, models.CASCADE, primary_key=True, related_name="member_set"
    )
    as_of = models.DateTimeField()
    first_contact_id = models.BigIntegerField(default=0)
    bits = models.BinaryField(help_text="zlib-compressed, least significant bit first")

    def __str__(self) -> str:
        return f"members of {self.segment_id} as of {self.as_of:%Y-%m-%d %H:%M}"
