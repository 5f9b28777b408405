"""Fill a "Demo" workspace with data that makes the dashboard worth opening (SPEC §5.3).

Idempotent: contacts, segments and surveys are found by their ids and names and
updated; events, displays and responses are regenerated relative to now, so the
"in the last 30 days" segments stay populated however old the database is.
"""

import random
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from refiner.models import Membership, Workspace
from segments import ingest, membership, services
from segments.models import Contact, Event, Segment
from segments.values import iso
from surveys import services as survey_services
from surveys.models import Survey
from targeting.services import apply_targeting, clean_targeting

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo"
CONTACTS = 200
ACCOUNTS = 30
# Data tables, kept dense: the formatter would give each name its own line.
FIRST_NAMES = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis",
               "Frances", "Edsger", "Radia", "Guido", "Hedy", "Tim", "Katherine", "John",
               "Sophie", "Yukihiro"]  # fmt: skip
LAST_NAMES = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov",
              "Ritchie", "Allen", "Dijkstra", "Perlman", "van Rossum", "Lamarr", "Berners-Lee",
              "Johnson", "McCarthy", "Wilson", "Matsumoto"]  # fmt: skip
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka",
             "Tyrell", "Cyberdyne", "Soylent", "Aperture", "Vandelay", "Massive Dynamic",
             "Pied Piper"]  # fmt: skip
INDUSTRIES = ["software", "retail", "finance", "health", "education"]
EVENTS = ["dashboard_viewed", "report_created", "report_exported", "teammate_invited",
          "integration_connected"]  # fmt: skip


def condition(kind: str, **fields) -> dict:
    return {"type": kind, **fields}


def group(match: str, *conditions) -> dict:
    return {"type": "group", "match": match, "conditions": list(conditions)}


class Command(BaseCommand):
    help = "Create or refresh the demo workspace (sign in as demo@example.com / demo)."

    def add_arguments(self, parser):
        parser.add_argument("--contacts", type=int, default=CONTACTS, help="How many contacts.")

    def handle(self, *args, contacts: int = CONTACTS, **options):
        self.size = max(10, contacts)
        rng = random.Random(2026)
        now = timezone.now()
        with transaction.atomic():
            workspace = self.workspace()
            people = self.contacts(workspace, rng, now)
            self.events(workspace, people, rng, now)
            segments = self.segments(workspace, people, rng)
            surveys = self.surveys(workspace, people, segments, rng, now)
        # The first sweep opens the segments' memberships, so their history, cached sizes
        # and the Targeting estimate start from the demo's members, not from nobody.
        membership.sweep_workspace(workspace.pk, timezone.now())
        self.stdout.write(
            f"Demo workspace “{workspace.name}”: {len(people)} contacts, "
            f"{Event.objects.filter(workspace=workspace).count()} events, "
            f"{len(segments)} segments, "
            f"{surveys} surveys. Sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}."
        )

    def workspace(self) -> Workspace:
        User = get_user_model()
        user = User.objects.filter(username=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(username=DEMO_EMAIL, email=DEMO_EMAIL)
        if not user.check_password(DEMO_PASSWORD):
            # Only when changed: a new hash would sign the demo user out of open sessions.
            user.set_password(DEMO_PASSWORD)
            user.save()
        workspace = Workspace.objects.filter(name="Demo", memberships__user=user).first()
        if workspace is None:
            workspace = Workspace.objects.create(name="Demo", allowed_origins=[])
        Membership.objects.update_or_create(
            workspace=workspace, user=user, defaults={"role": Membership.OWNER}
        )
        return workspace

    def contacts(self, workspace: Workspace, rng: random.Random, now: datetime) -> list[Contact]:
        accounts = []
        for n in range(ACCOUNTS):
            name = f"{COMPANIES[n % len(COMPANIES)]}{'' if n < len(COMPANIES) else ' Labs'}"
            accounts.append(
                {
                    "id": f"acct-{n + 1:03}",
                    "name": name,
                    "industry": INDUSTRIES[n % len(INDUSTRIES)],
                    "seats": rng.choice([3, 8, 15, 40, 120, 400, 2500]),
                }
            )
        contacts = []
        for n in range(self.size):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            employee = n % 25 == 0
            domain = "refiner.dev" if employee else "example.com"
            age_days = rng.choice([rng.randint(0, 6), rng.randint(7, 60), rng.randint(61, 700)])
            signed_up = now - timedelta(days=age_days, hours=rng.randint(0, 23))
            account = rng.choice(accounts)
            plan = rng.choices(["free", "pro", "enterprise"], weights=[5, 3, 2])[0]
            user = ingest.clean_user(
                {
                    "id": f"user-{n + 1:03}",
                    "email": f"{first}.{last}.{n + 1}@{domain}".lower().replace(" ", ""),
                    "name": f"{first} {last}",
                    "plan": "Enterprise" if plan == "enterprise" and n % 7 == 0 else plan,
                    "role": "employee" if employee else rng.choice(["admin", "member", "member"]),
                    "company_size": account["seats"],
                    "signed_up_at": iso(signed_up),
                    "beta_tester": n % 9 == 0,
                    "account": account,
                }
            )
            contact = ingest.identify_contact(workspace=workspace, user=user, now=now)
            contact.first_seen_at = signed_up
            contact.last_seen_at = max(signed_up, now - timedelta(hours=rng.randint(1, 24 * 20)))
            contact.save(update_fields=["first_seen_at", "last_seen_at"])
            ingest.sync_contact_values(contact)
            contacts.append(contact)
        return contacts

    def events(self, workspace, contacts, rng: random.Random, now: datetime) -> None:
        Event.objects.filter(workspace=workspace).delete()
        rows = []
        for contact in contacts:
            active_days = max(1, min(90, (now - contact.first_seen_at).days))
            power = rng.random() < 0.2
            for name in EVENTS:
                count = rng.randint(0, 4)
                if name == "report_exported":
                    count = rng.randint(5, 18) if power else rng.randint(0, 3)
                if name == "dashboard_viewed":
                    count = rng.randint(3, 25)
                for _ in range(count):
                    moment = now - timedelta(days=rng.uniform(0, active_days))
                    if power and name == "report_exported":
                        moment = now - timedelta(days=rng.uniform(0, min(active_days, 29)))
                    rows.append(
                        Event(workspace=workspace, contact=contact, name=name, occurred_at=moment)
                    )
        Event.objects.bulk_create(rows, batch_size=1000)

    def segment(self, workspace, name: str, description: str, rules=None) -> Segment:
        kind = Segment.MANUAL if rules is None else Segment.RULES
        segment, _ = Segment.objects.update_or_create(
            workspace=workspace,
            name=name,
            defaults={"description": description, "kind": kind, "rules": rules},
        )
        return segment

    def segments(self, workspace, contacts, rng: random.Random) -> dict[str, Segment]:
        s = {}
        s["signed_up"] = self.segment(
            workspace,
            "Signed up 30+ days ago",
            "Past their first month.",
            group(
                "all",
                condition(
                    "attribute", attribute="signed_up_at", operator="more_than_days_ago", value=30
                ),
            ),
        )
        s["new"] = self.segment(
            workspace,
            "New users",
            "First seen in the last 7 days.",
            group(
                "all",
                condition(
                    "attribute", attribute="first_seen_at", operator="less_than_days_ago", value=7
                ),
            ),
        )
        s["long_time"] = self.segment(
            workspace,
            "Long-time users",
            "With us for more than a year.",
            group(
                "all",
                condition(
                    "attribute", attribute="first_seen_at", operator="more_than_days_ago", value=365
                ),
            ),
        )
        s["enterprise"] = self.segment(
            workspace,
            "Enterprise customers",
            "On the Enterprise plan, however it is spelled.",
            group(
                "all",
                condition(
                    "attribute",
                    attribute="plan",
                    operator="equals",
                    value="enterprise",
                    ignore_case=True,
                ),
            ),
        )
        s["power"] = self.segment(
            workspace,
            "Power users",
            "Exported a report at least 5 times in the last 30 days.",
            group(
                "all",
                condition(
                    "event", event="report_exported", operator="at_least", value=5, within_days=30
                ),
            ),
        )
        s["established_power"] = self.segment(
            workspace,
            "Established power users",
            "Signed up 30+ days ago AND power users.",
            group(
                "all",
                condition("segment", segment=s["signed_up"].pk, operator="in"),
                condition("segment", segment=s["power"].pk, operator="in"),
            ),
        )
        s["employees"] = self.segment(
            workspace,
            "Employees",
            "Our own people.",
            group(
                "any",
                condition(
                    "attribute",
                    attribute="email",
                    operator="ends_with",
                    value="@refiner.dev",
                    ignore_case=True,
                ),
                condition("attribute", attribute="role", operator="equals", value="employee"),
            ),
        )
        s["customers"] = self.segment(
            workspace,
            "Everyone except employees",
            "Every contact who is not an employee.",
            group("none", condition("segment", segment=s["employees"].pk, operator="in")),
        )
        s["big_accounts"] = self.segment(
            workspace,
            "Big accounts",
            "Companies with 100 seats or more.",
            group(
                "all",
                condition(
                    "attribute",
                    attribute="account.seats",
                    operator="greater_than_or_equal",
                    value=100,
                ),
            ),
        )
        s["beta"] = self.segment(workspace, "Beta testers", "Hand-picked early-access users.")
        picked = [c for c in contacts if c.traits.get("beta_tester")]
        services.add_members(s["beta"], [c.user_id for c in picked])
        return s

    def surveys(self, workspace, contacts, segments, rng: random.Random, now: datetime) -> int:
        plans = [
            (
                "Product NPS",
                Survey.LIVE,
                [
                    {"key": "nps", "type": "nps", "text": "How likely are you to recommend us?"},
                    {
                        "key": "why",
                        "type": "text",
                        "text": "What is the main reason for your score?",
                    },
                ],
                {
                    "audience": "segments",
                    "segments": [segments["customers"].pk],
                    "delay_seconds": 5,
                    "frequency": "recurring",
                    "recurring_days": 90,
                },
            ),
            (
                "Enterprise reporting feedback",
                Survey.LIVE,
                [
                    {"key": "rating", "type": "rating", "text": "How useful are exported reports?"},
                    {
                        "key": "missing",
                        "type": "multiple_choice",
                        "text": "What is missing?",
                        "choices": ["More formats", "Scheduling", "Sharing", "Nothing"],
                    },
                ],
                {
                    "audience": "segments",
                    "segment_match": "any",
                    "segments": [segments["enterprise"].pk, segments["power"].pk],
                    "excluded_segments": [segments["employees"].pk],
                    "trigger": "event",
                    "trigger_event": "report_exported",
                    "priority": 10,
                },
            ),
            (
                "Onboarding check-in",
                Survey.PAUSED,
                [
                    {
                        "key": "goal",
                        "type": "single_choice",
                        "text": "What brought you here?",
                        "choices": ["Reporting", "Team dashboards", "Integrations", "Just looking"],
                    }
                ],
                {
                    "audience": "segments",
                    "segments": [segments["new"].pk],
                    "allowed_pages": [{"match": "starts_with", "value": "/onboarding"}],
                },
            ),
        ]
        Survey.objects.filter(workspace=workspace, name__in=[p[0] for p in plans]).delete()
        created = []
        for name, status, questions, targeting in plans:
            survey = Survey.objects.create(
                workspace=workspace, name=name, status=status, created_at=now - timedelta(days=80)
            )
            survey_services.save_questions(survey, survey_services.clean_questions(questions))
            apply_targeting(survey, clean_targeting(targeting, workspace=workspace))
            created.append(survey)
        self.responses(created[0], contacts, rng, now, survey_services)
        self.responses(created[1], contacts, rng, now, survey_services)
        self.segment(
            workspace,
            "NPS promoters",
            "Answered 9 or 10 to the product NPS.",
            group(
                "all",
                condition(
                    "answer",
                    survey=created[0].pk,
                    question="nps",
                    operator="greater_than_or_equal",
                    value=9,
                ),
            ),
        )
        return len(created)

    def responses(self, survey, contacts, rng: random.Random, now: datetime, survey_services):
        questions = list(survey.questions.all())
        for contact in contacts:
            if contact.traits.get("role") == "employee" or rng.random() > 0.55:
                continue
            shown = now - timedelta(days=rng.uniform(0, 75), minutes=rng.randint(0, 600))
            display = survey_services.record_display(survey=survey, contact=contact, now=shown)
            if rng.random() < 0.2:
                survey_services.dismiss_display(display=display, now=shown + timedelta(seconds=20))
                continue
            answers = {q.key: self.answer(q, contact, rng) for q in questions}
            completed = rng.random() < 0.9
            if not completed:
                answers = dict(list(answers.items())[:1])
            survey_services.record_answers(
                display=display,
                answers=answers,
                completed=completed,
                now=shown + timedelta(seconds=rng.randint(10, 90)),
            )

    def answer(self, question, contact, rng: random.Random):
        happy = str(contact.traits.get("plan", "")).lower() in ("pro", "enterprise")
        if question.type == "nps":
            return min(10, max(0, round(rng.gauss(8.3 if happy else 6.4, 2))))
        if question.type == "rating":
            return min(5, max(1, round(rng.gauss(4 if happy else 3, 1))))
        if question.type == "single_choice":
            return rng.choice(question.choices)
        if question.type == "multiple_choice":
            return rng.sample(question.choices, rng.randint(1, 2))
        return rng.choice(
            [
                "Fast and reliable.",
                "Exports are great.",
                "Needs better sharing.",
                "Pricey for small teams.",
                "Love the dashboards.",
            ]
        )
