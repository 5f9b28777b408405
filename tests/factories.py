import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from refiner.models import Membership, Workspace
from segments.models import Account, Contact, Event, Segment
from surveys.models import Question, Survey
from targeting.models import Targeting
from webhooks.models import EVENT_NAMES, Endpoint


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
        from segments.services import sync_account_values, sync_contact_values

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
            extracted = [
                {"key": "nps", "type": "nps", "text": "How likely are you to recommend us?"}
            ]
        for position, question in enumerate(extracted):
            Question.objects.create(survey=obj, position=position, **question)

    @factory.post_generation
    def targeting(obj, create, extracted, **kwargs):
        if create:
            Targeting.objects.create(survey=obj, **(extracted or {}))


class EndpointFactory(factory.django.DjangoModelFactory):
    """A webhook endpoint; tests point `url` at their local receiver."""

    class Meta:
        model = Endpoint

    workspace = factory.SubFactory(WorkspaceFactory)
    url = "https://hooks.example.com/refiner"
    events = factory.LazyFunction(lambda: list(EVENT_NAMES))
