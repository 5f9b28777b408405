"""Dashboard pages for surveys (list, Questions tab, status) and responses (SPEC §6)."""

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from refiner.errors import Invalid
from refiner.fragments import render_fragment
from refiner.http import safe_next
from refiner.keyset import keyset_page
from refiner.models import Membership
from refiner.workspaces import require_membership
from surveys import reports
from surveys.editing import clean_survey, save_survey, survey_users
from surveys.forms import (
    QuestionForm,
    ResponseFilterForm,
    ResultsForm,
    SurveyCreateForm,
    new_question_key,
    plain_words,
    question_initial,
)
from surveys.models import Question, Survey

RESPONSES_PER_PAGE = 25
STATUS_FILTERS = [("", "All"), *Survey.STATUSES]


def survey_for(request: HttpRequest, survey_id: int, *, edit: bool = False):
    """The membership and one survey of the current workspace; 404 for anybody else's."""
    membership = require_membership(request, edit=edit)
    surveys = Survey.objects.with_parts()
    return membership, get_object_or_404(surveys, pk=survey_id, workspace=membership.workspace)


# Surveys --------------------------------------------------------------------


def _survey_list(request: HttpRequest, membership: Membership, form: SurveyCreateForm):
    status = request.GET.get("status", "")
    surveys = (
        Survey.objects.with_parts()
        .filter(workspace=membership.workspace)
        .annotate(completed_responses=Count("responses", filter=Q(responses__completed=True)))
    )
    if status in dict(Survey.STATUSES):
        surveys = surveys.filter(status=status)
    context = {
        "surveys": surveys,
        "status": status,
        "status_filters": STATUS_FILTERS,
        "form": form,
        "can_edit": membership.can_edit,
    }
    return render_fragment(request, "surveys/list.html", "survey-table", context)


@login_required
@require_GET
def survey_list(request: HttpRequest) -> HttpResponse:
    return _survey_list(request, require_membership(request), SurveyCreateForm())


@login_required
@require_POST
def survey_create(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, edit=True)
    form = SurveyCreateForm(request.POST)
    if not form.is_valid():
        return _survey_list(request, membership, form)
    cleaned = clean_survey({"name": form.cleaned_data["name"]}, membership.workspace)
    survey = save_survey(membership.workspace, cleaned)
    messages.success(request, f"Survey “{survey.name}” created. Add its first question.")
    return redirect("survey-questions", survey_id=survey.pk)


def _apply_questions(survey: Survey, questions: list[dict]) -> dict[str, str]:
    """Save the survey's new question list through the API's own rules; errors if refused."""
    try:
        cleaned = clean_survey({"questions": questions}, survey.workspace, survey)
    except Invalid as problem:
        return problem.fields or {"questions": problem.message}
    save_survey(survey.workspace, cleaned, survey)
    return {}


def _place_errors(errors: dict[str, str], index: int, form: QuestionForm) -> str | None:
    """Put `questions[index].field` errors on the form; return what fits no field."""
    prefix, rest = f"questions[{index}]", []
    for path, message in errors.items():
        name = path.removeprefix(prefix + ".")
        if path.startswith(prefix + ".") and name in form.fields:
            form.add_error(name, plain_words(message))
        else:
            rest.append(plain_words(message))
    return " ".join(rest) or None


def _questions_page(
    request: HttpRequest,
    survey: Survey,
    membership: Membership,
    *,
    bound: tuple[int, QuestionForm] | None = None,
    add_form: QuestionForm | None = None,
    problem: str | None = None,
) -> HttpResponse:
    rows = []
    for question in survey.questions.all():
        if bound and bound[0] == question.pk:
            rows.append((question, bound[1]))
        else:
            rows.append((question, QuestionForm(initial=question_initial(question))))
    context = {
        "survey": survey,
        "rows": rows,
        "add_form": add_form or QuestionForm(initial={"type": Question.NPS}),
        "problem": problem,
        "can_edit": membership.can_edit,
        "tab": "questions",
    }
    return render_fragment(request, "surveys/questions.html", "questions", context)


@login_required
@require_GET
def survey_questions(request: HttpRequest, survey_id: int) -> HttpResponse:
    membership, survey = survey_for(request, survey_id)
    return _questions_page(request, survey, membership)


def _after_change(request: HttpRequest, survey: Survey, membership: Membership, note: str):
    if request.htmx:
        return _questions_page(request, survey, membership)
    messages.success(request, note)
    return redirect("survey-questions", survey_id=survey.pk)


@login_required
@require_POST
def question_add(request: HttpRequest, survey_id: int) -> HttpResponse:
    membership, survey = survey_for(request, survey_id, edit=True)
    form = QuestionForm(request.POST)
    current = [q.to_dict() for q in survey.questions.all()]
    if form.is_valid():
        taken = {q["key"] for q in current}
        key = form.cleaned_data["key"] or new_question_key(form.cleaned_data["type"], taken)
        errors = _apply_questions(survey, [*current, form.question(key)])
        if not errors:
            return _after_change(request, survey, membership, "Question added.")
        problem = _place_errors(errors, len(current), form)
        return _questions_page(request, survey, membership, add_form=form, problem=problem)
    return _questions_page(request, survey, membership, add_form=form)


def _reordered(questions: list[dict], index: int, action: str) -> list[dict] | None:
    other = index - 1 if action == "up" else index + 1
    if not 0 <= other < len(questions):
        return None
    moved = list(questions)
    moved[index], moved[other] = moved[other], moved[index]
    return moved


@login_required
@require_POST
def question_change(request: HttpRequest, survey_id: int, question_id: int) -> HttpResponse:
    """One question's buttons: save its fields, move it up or down, or remove it."""
    membership, survey = survey_for(request, survey_id, edit=True)
    question = get_object_or_404(survey.questions, pk=question_id)
    current = [q.to_dict() for q in survey.questions.all()]
    index = [q["key"] for q in current].index(question.key)
    action = request.POST.get("action", "save")
    form = QuestionForm(request.POST)
    if action in ("up", "down"):
        wanted, note = _reordered(current, index, action) or current, "Question moved."
    elif action == "remove":
        wanted, note = current[:index] + current[index + 1 :], "Question removed."
    elif form.is_valid():
        wanted, note = list(current), "Question saved."
        wanted[index] = form.question(question.key)
    else:
        return _questions_page(request, survey, membership, bound=(question.pk, form))
    errors = _apply_questions(survey, wanted)
    if errors and action == "save":
        problem = _place_errors(errors, index, form)
        return _questions_page(
            request, survey, membership, bound=(question.pk, form), problem=problem
        )
    if errors:
        problem = plain_words(" ".join(errors.values()))
        return _questions_page(request, survey, membership, problem=problem)
    return _after_change(request, survey, membership, note)


@login_required
@require_POST
def survey_status(request: HttpRequest, survey_id: int) -> HttpResponse:
    """Publish, pause or archive; the API's rules decide (a live survey needs a question)."""
    membership, survey = survey_for(request, survey_id, edit=True)
    status = request.POST.get("status", "")
    try:
        cleaned = clean_survey({"status": status}, membership.workspace, survey)
    except Invalid as problem:
        said = " ".join((problem.fields or {}).values()) or problem.message
        messages.error(request, plain_words(said))
    else:
        save_survey(membership.workspace, cleaned, survey)
        messages.success(request, f"“{survey.name}” is now {survey.get_status_display().lower()}.")
    fallback = reverse("survey-questions", kwargs={"survey_id": survey.pk})
    return redirect(safe_next(request, fallback))


@login_required
@require_POST
def survey_rename(request: HttpRequest, survey_id: int) -> HttpResponse:
    membership, survey = survey_for(request, survey_id, edit=True)
    try:
        cleaned = clean_survey({"name": request.POST.get("name", "")}, membership.workspace, survey)
    except Invalid as problem:
        messages.error(request, plain_words(" ".join((problem.fields or {}).values())))
    else:
        save_survey(membership.workspace, cleaned, survey)
        messages.success(request, f"Renamed to “{cleaned['name']}”.")
    fallback = reverse("survey-questions", kwargs={"survey_id": survey.pk})
    return redirect(safe_next(request, fallback))


def copy_name(name: str) -> str:
    """“<name> (copy)”, shortened so that it still fits the 200 characters a name may have."""
    suffix = " (copy)"
    return name[: 200 - len(suffix)].rstrip() + suffix


@login_required
@require_POST
def survey_duplicate(request: HttpRequest, survey_id: int) -> HttpResponse:
    """A draft copy with the same questions and targeting, saved through the API's rules."""
    membership, survey = survey_for(request, survey_id, edit=True)
    original = survey.to_dict()
    body = {
        "name": copy_name(survey.name),
        "status": Survey.DRAFT,
        "questions": original["questions"],
        "targeting": original["targeting"] or {},
    }
    copy = save_survey(membership.workspace, clean_survey(body, membership.workspace))
    messages.success(request, f"“{copy.name}” created as a draft.")
    return redirect("survey-questions", survey_id=copy.pk)


@login_required
@require_http_methods(["GET", "POST"])
def survey_delete(request: HttpRequest, survey_id: int) -> HttpResponse:
    """Confirm, then delete; refused while a segment's rules name the survey (as in the API)."""
    membership, survey = survey_for(request, survey_id, edit=True)
    with transaction.atomic():
        users = survey_users(survey)
        if request.method == "POST" and not users:
            survey.delete()
            messages.success(request, f"Survey “{survey.name}” deleted with its responses.")
            return redirect("survey-list")
    context = {
        "survey": survey,
        "users": users,
        "responses": survey.responses.count(),
        "can_edit": membership.can_edit,
        "tab": None,
    }
    status = 409 if request.method == "POST" else 200
    return render(request, "surveys/delete.html", context, status=status)


@login_required
@require_GET
def survey_results(request: HttpRequest, survey_id: int) -> HttpResponse:
    """Figures per question, by week, for everyone and side by side for chosen segments."""
    membership, survey = survey_for(request, survey_id)
    form = ResultsForm(request.GET or None, workspace=membership.workspace)
    context = {"survey": survey, "form": form, "results": None, "tab": "results"}
    context["can_edit"] = membership.can_edit
    if form.is_bound and not form.is_valid():
        return render(request, "surveys/results.html", context, status=400)
    segments = list(form.cleaned_data["segment"]) if form.is_bound else []
    context["results"] = reports.survey_results(survey, segments, now=timezone.now())
    return render(request, "surveys/results.html", context)


# Responses ------------------------------------------------------------------


def _responses(request: HttpRequest, form: ResponseFilterForm, membership: Membership):
    """The filtered responses, or None when the filters are invalid."""
    if form.is_bound and not form.is_valid():
        return None
    data = form.cleaned_data if form.is_bound else {}
    return reports.filtered_responses(
        membership.workspace_id,
        survey=data.get("survey"),
        segment=data.get("segment"),
        start=data.get("start"),
        end=data.get("end"),
        include_test=request.GET.get("include_test") == "1",
        now=timezone.now(),
    )


@login_required
@require_GET
def response_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    form = ResponseFilterForm(request.GET or None, workspace=membership.workspace)
    responses = _responses(request, form, membership)
    context = {"form": form, "page": None, "summaries": []}
    if responses is not None:
        survey = form.cleaned_data.get("survey") if form.is_bound else None
        listed = responses.select_related("survey", "contact")
        context["page"] = keyset_page(request, listed, "created_at", RESPONSES_PER_PAGE)
        context["summaries"] = reports.score_summaries(responses, survey)
        _attach_answer_rows(context["page"])
    return render_fragment(request, "responses/list.html", "results", context)


def _answer_text(value) -> str:
    if isinstance(value, list):
        return ", ".join(_answer_text(item) for item in value) or "–"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    return "–" if value is None or value == "" else str(value)


def _attach_answer_rows(page) -> None:
    """Give each response its answers as (question text, value), in the survey's order."""
    questions: dict[int, list[Question]] = {}
    for question in Question.objects.filter(survey_id__in={r.survey_id for r in page}):
        questions.setdefault(question.survey_id, []).append(question)
    for response in page:
        answers = dict(response.answers or {})
        rows = [
            (q.text, _answer_text(answers.pop(q.key)))
            for q in questions.get(response.survey_id, [])
            if q.key in answers
        ]
        response.answer_rows = rows + [(key, _answer_text(v)) for key, v in answers.items()]


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


@login_required
@require_http_methods(["GET", "HEAD"])
def response_export(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    form = ResponseFilterForm(request.GET or None, workspace=membership.workspace)
    responses = _responses(request, form, membership)
    if responses is None:
        errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
        return HttpResponse(f"Invalid filters: {errors}", status=400, content_type="text/plain")
    survey = form.cleaned_data.get("survey") if form.is_bound else None
    writer = csv.writer(_Echo())
    rows = reports.csv_rows(responses, reports.csv_columns(responses, survey))
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="responses-{stamp}.csv"'
    return response
