import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from refiner.models import Membership, Workspace
from segments.ingest import sync_account_values, sync_contact_values
from segments.models import Account, Contact, Event, Segment, SegmentMember
from surveys.models import Answer, Display, Question, Response, Survey
from surveys.services import record_answers, record_display
from targeting.models import Targeting
from webhooks.models import EVENT_NAMES, Endpoint

# The question most surveys ask, and the one a SurveyFactory survey asks unless told otherwise.
NPS_QUESTION = {"key": "nps", "type": "nps", "text": "How likely are you to recommend us?"}


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.PostGenerationMethodCall("set_password", "password")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.OWNER


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    workspace = factory.SubFactory(WorkspaceFactory)
    external_id = factory.Sequence(lambda n: f"acct-{n}")
    name = factory.Sequence(lambda n: f"Account {n}")


class ContactFactory(factory.django.DjangoModelFactory):
    """A contact whose parsed values are kept in sync, as identify would."""

    class Meta:
        model = Contact
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    user_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda o: f"{o.user_id}@example.com")
    traits = factory.LazyFunction(dict)

    @factory.post_generation
    def sync(obj, create, extracted, **kwargs):
        if create:
            sync_contact_values(obj)
            if obj.account_id:
                sync_account_values(obj.account)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    contact = factory.SubFactory(ContactFactory)
    workspace = factory.SelfAttribute("contact.workspace")
    name = "report_exported"
    occurred_at = factory.LazyFunction(timezone.now)


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")
    kind = Segment.RULES
    rules = factory.LazyFunction(lambda: {"type": "group", "match": "all", "conditions": []})


class ManualSegmentFactory(SegmentFactory):
    """A segment whose members are listed by hand: `members=[contact, ...]`."""

    class Meta:
        model = Segment
        skip_postgeneration_save = True

    kind = Segment.MANUAL
    rules = None

    @factory.post_generation
    def members(obj, create, extracted, **kwargs):
        if create:
            for contact in extracted or ():
                SegmentMember.objects.create(segment=obj, contact=contact)


class SurveyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Survey
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Survey {n}")
    status = Survey.LIVE

    @factory.post_generation
    def questions(obj, create, extracted, **kwargs):
        if not create:
            return
        if extracted is None:
            extracted = [NPS_QUESTION]
        for position, question in enumerate(extracted):
            Question.objects.create(survey=obj, position=position, **question)

    @factory.post_generation
    def targeting(obj, create, extracted, **kwargs):
        if create:
            Targeting.objects.create(survey=obj, **(extracted or {}))


class DisplayFactory(factory.django.DjangoModelFactory):
    """A survey shown to a contact, stored as it is; what the widget does on the way
    (checks, counts) is surveys.services.record_display's and tested through it."""

    class Meta:
        model = Display

    survey = factory.SubFactory(SurveyFactory)
    workspace = factory.SelfAttribute("survey.workspace")
    contact = factory.SubFactory(ContactFactory, workspace=factory.SelfAttribute("..workspace"))


class ResponseFactory(factory.django.DjangoModelFactory):
    """A response to a display, by the display's contact to the display's survey."""

    class Meta:
        model = Response

    display = factory.SubFactory(DisplayFactory)
    workspace = factory.SelfAttribute("display.workspace")
    survey = factory.SelfAttribute("display.survey")
    contact = factory.SelfAttribute("display.contact")


def record_response(survey, contact, answers: dict, now, completed: bool = False) -> Response:
    """A response recorded the way the widget records one: shown at `now`, then answered."""
    display = record_display(survey=survey, contact=contact, now=now)
    return record_answers(display=display, answers=answers, completed=completed, now=now)


class AnswerFactory(factory.django.DjangoModelFactory):
    """One stored answer element with only the parsed fields a test gives
    (surveys.services.record_answers parses a raw answer into all of them)."""

    class Meta:
        model = Answer

    response = factory.SubFactory(ResponseFactory)
    workspace = factory.SelfAttribute("response.workspace")
    survey = factory.SelfAttribute("response.survey")
    contact = factory.SelfAttribute("response.contact")
    key = "nps"


def target(survey, *, segments=(), excluded=(), **fields):
    """Change a survey's targeting the way the dashboard does: its fields, then its segments.
    Naming segments targets them (audience "segments") unless `audience` says otherwise.
    Returns the survey."""
    targeting = survey.targeting
    for key, value in fields.items():
        setattr(targeting, key, value)
    if segments:
        targeting.audience = fields.get("audience", Targeting.SEGMENTS)
    targeting.save()
    targeting.segments.set(segments)
    targeting.excluded_segments.set(excluded)
    return survey


def targeted(survey, chosen, excluded=(), match=Targeting.ANY):
    """Target `chosen` segments, `match` any or all, minus `excluded`; returns the survey."""
    return target(
        survey, segments=chosen, excluded=excluded, audience=Targeting.SEGMENTS, segment_match=match
    )


class EndpointFactory(factory.django.DjangoModelFactory):
    """A webhook endpoint; tests point `url` at their local receiver."""

    class Meta:
        model = Endpoint

    workspace = factory.SubFactory(WorkspaceFactory)
    url = "https://hooks.example.com/refiner"
    events = factory.LazyFunction(lambda: list(EVENT_NAMES))
