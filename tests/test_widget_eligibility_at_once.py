"""A known user's eligibility in one statement, once the process has admitted the key
(PostgreSQL, issue 16).

The checks run on the workspace as this process last admitted it; the statement finds
the contact only while the database still holds what they read, and carries the two
digests a kept answer is filed under (the contact's row with its account's, and its
snapshot). Each test changes one input behind the process's back, so that only the
statement's own guard or the digests can send the check down the full path, which
answers as it always did.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from refiner.models import Workspace
from segments.models import Account, Contact
from targeting import memo, widget_api
from targeting.widget_api import signature_of
from tests.clients import Widget, error_code, fields_of
from tests.factories import AccountFactory, ContactFactory, SegmentFactory, SurveyFactory, targeted
from tests.rules import attribute, group

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the digests are worked out by PostgreSQL's md5; SQLite sends the rows",
    ),
]

PAGE = "https://app.example.com/app/reports"


@pytest.fixture
def ada(workspace):
    account = AccountFactory(workspace=workspace, traits={"tier": "silver"})
    return ContactFactory(workspace=workspace, user_id="ada", account=account)


@pytest.fixture
def gold(workspace):
    """A survey for gold accounts only."""
    rules = group(attribute("account.tier", "equals", "gold"))
    chosen = SegmentFactory(workspace=workspace, rules=rules)
    return targeted(SurveyFactory(workspace=workspace), [chosen])


def warmed_up(widget: Widget) -> list[int]:
    """Two checks, as a new process makes them: the first admits the key and reads the
    definitions (it knows no fingerprint yet), the second keeps its answer under the
    digests that the one statement reads."""
    offered(widget)
    return offered(widget)


def ask(widget: Widget, user_id: str = "ada", **body):
    return widget.post("eligibility", {"user_id": user_id, "url": PAGE, **body})


def offered(widget: Widget, user_id: str = "ada", **body) -> list[int]:
    response = ask(widget, user_id, **body)
    assert response.status_code == 200, response.content
    return [s["id"] for s in response.json()["surveys"]]


def test_a_kept_answer_is_read_with_one_statement(workspace, widget, ada, gold):
    everyone = SurveyFactory(workspace=workspace)
    assert warmed_up(widget) == [everyone.pk]

    with CaptureQueriesContext(connection) as queries:
        assert offered(widget) == [everyone.pk]

    assert len(queries) == 1
    assert "md5" in queries[0]["sql"]


def test_the_full_path_and_the_one_statement_file_answers_alike(workspace, widget, ada, gold):
    SurveyFactory(workspace=workspace)
    offered(widget)  # the definitions are now held by this process
    widget_api._admitted.clear()
    memo.answers.clear()
    # The key is not admitted: the full path reads the caller with its fingerprint and
    # keeps the answer; the check after it reads that answer in its one statement.
    assert len(offered(widget)) == 1

    with CaptureQueriesContext(connection) as queries:
        assert len(offered(widget)) == 1

    assert len(queries) == 1


def test_a_page_no_survey_shows_on_is_kept_too(workspace, widget, ada):
    billing = [{"match": "contains", "value": "/billing"}]
    SurveyFactory(workspace=workspace, targeting={"allowed_pages": billing})
    assert warmed_up(widget) == []
    # Kept, although it read nothing of the contact: the next check rebuilds nothing.
    assert len(memo.answers) == 1

    with CaptureQueriesContext(connection) as queries:
        assert offered(widget) == []

    assert len(queries) == 1


def test_an_account_trait_changed_since_is_answered_afresh(workspace, widget, ada, gold):
    assert warmed_up(widget) == []
    Account.objects.filter(pk=ada.account_id).update(traits={"tier": "gold"})
    assert offered(widget) == [gold.pk]


def test_another_account_since_is_answered_afresh(workspace, widget, ada, gold):
    assert warmed_up(widget) == []
    golden = AccountFactory(workspace=workspace, traits={"tier": "gold"})
    Contact.objects.filter(pk=ada.pk).update(account=golden)
    assert offered(widget) == [gold.pk]


def test_the_memo_off_still_answers(workspace, widget, ada, settings):
    everyone = SurveyFactory(workspace=workspace)
    settings.ELIGIBILITY_MEMO_SIZE = 0
    assert offered(widget) == [everyone.pk]
    assert offered(widget) == [everyone.pk]
    assert len(memo.answers) == 0


def test_identity_verification_turned_on_since_is_still_required(workspace, widget, ada):
    SurveyFactory(workspace=workspace)
    offered(widget)
    Workspace.objects.filter(pk=workspace.pk).update(identity_verification=True)
    response = ask(widget)
    assert response.status_code == 403 and error_code(response) == "bad_signature"


def test_a_secret_key_rotated_since_no_longer_signs(workspace, widget, ada):
    SurveyFactory(workspace=workspace)
    Workspace.objects.filter(pk=workspace.pk).update(identity_verification=True)
    workspace.refresh_from_db()
    signature = signature_of(workspace, "ada")
    assert len(offered(widget, signature=signature)) == 1
    workspace.rotate_keys(secret=True)
    response = ask(widget, signature=signature)
    assert response.status_code == 403 and error_code(response) == "bad_signature"


def test_an_origin_no_longer_allowed_is_refused(workspace, ada):
    SurveyFactory(workspace=workspace)
    widget = Widget(workspace, origin="https://app.example.com")
    offered(widget)
    Workspace.objects.filter(pk=workspace.pk).update(allowed_origins=["https://other.example.com"])
    response = ask(widget)
    assert response.status_code == 403 and error_code(response) == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response


def test_an_allowed_origin_is_answered_with_its_header(workspace, ada):
    Workspace.objects.filter(pk=workspace.pk).update(allowed_origins=["https://app.example.com"])
    SurveyFactory(workspace=workspace)
    widget = Widget(workspace, origin="https://app.example.com")
    offered(widget)
    response = ask(widget)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_a_rotated_widget_key_is_refused(workspace, widget, ada):
    SurveyFactory(workspace=workspace)
    offered(widget)
    workspace.rotate_keys(widget=True)
    assert ask(widget).status_code == 401


def test_a_recontact_period_changed_since_is_answered_afresh(workspace, widget, ada):
    from django.utils import timezone

    from surveys.services import record_display

    shown = SurveyFactory(workspace=workspace, status="paused")
    record_display(survey=shown, contact=ada, now=timezone.now() - timezone.timedelta(days=3))
    Workspace.objects.filter(pk=workspace.pk).update(recontact_days=0)
    wanted = SurveyFactory(workspace=workspace)
    assert offered(widget) == [wanted.pk]
    Workspace.objects.filter(pk=workspace.pk).update(recontact_days=30)
    assert offered(widget) == []


def test_an_unknown_user_is_offered_nothing_and_not_made(workspace, widget, ada):
    SurveyFactory(workspace=workspace)
    offered(widget)
    assert offered(widget, user_id="nobody") == []
    assert not Contact.objects.filter(workspace=workspace, user_id="nobody").exists()


def test_a_deleted_user_is_offered_nothing(workspace, widget, ada):
    SurveyFactory(workspace=workspace)
    assert len(offered(widget)) == 1
    Contact.objects.filter(pk=ada.pk).delete()
    assert offered(widget) == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"user_id": ""}, "user_id"),
        ({"event": ""}, "event"),
        ({"url": "x" * 2001}, "url"),
        ({"survey": "1"}, "survey"),
        ({"survey": True}, "survey"),
    ],
)
def test_a_bad_body_gets_the_full_paths_error(workspace, widget, ada, body, field):
    SurveyFactory(workspace=workspace)
    offered(widget)
    assert field in fields_of(widget.post("eligibility", {"user_id": "ada", "url": PAGE} | body))


def test_the_answer_is_of_the_survey_asked_for(workspace, widget, ada):
    first, second = SurveyFactory(workspace=workspace), SurveyFactory(workspace=workspace)
    assert sorted(offered(widget)) == sorted([first.pk, second.pk])
    assert offered(widget, survey=second.pk) == [second.pk]
    assert offered(widget, survey=first.pk) == [first.pk]
    assert offered(widget, survey=second.pk + 1000) == []


def test_another_workspaces_user_of_the_same_id_is_not_read(
    workspace, other_workspace, widget, ada
):
    SurveyFactory(workspace=workspace)
    SurveyFactory(workspace=other_workspace)
    ContactFactory(workspace=other_workspace, user_id="ada")
    offered(widget)
    stranger = Widget(other_workspace)
    offered(stranger)
    Contact.objects.filter(pk=ada.pk).delete()
    # This workspace's ada is gone; the other's is still there, under its own key.
    assert offered(widget) == []
    assert len(offered(stranger)) == 1
