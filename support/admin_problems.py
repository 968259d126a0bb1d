"""The problems' pages ("Problems" under Support, docs/product.md#problems).

A problem's page shows, above its one editable field (the title), what support needs to
work it: the fingerprint, its linked tickets, and the affected customers with the plan,
value and renewal of their current contracts, the highest value first (a fixed number of
queries whatever their number). Support and ops leads link or unlink a ticket there, and
reach "Send an update…" and "Solve…": confirmation pages that list exactly who gets the
update, or which tickets get solved, and whose POST applies to that or to nothing
(audit.previews). The services of ``support.problems`` decide and check who asks; these
views ask, show a refusal with what was typed, and report what was done.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from unfold.decorators import display

from audit.admin import AuditedModelAdmin, choice_badge
from audit.previews import preview_token
from kit.admin import report_refusal
from kit.params import object_or_404
from kit.service_owned import service_owned
from support import problems
from support.models import Problem, Ticket


class UpdateForm(forms.Form):
    body = forms.CharField(
        label="The update",
        max_length=20_000,
        strip=True,
        widget=forms.Textarea(
            attrs={"rows": 8, "placeholder": "What happened, what we do about it, what to expect"}
        ),
        help_text="Sent as a reply on each ticket listed, from support, in its conversation.",
        error_messages={"required": "Write the update first: it is empty."},
    )
    # What the page showed (audit.previews): the send reaches exactly that or refuses.
    previewed = forms.CharField(widget=forms.HiddenInput, required=False)


class SolveForm(forms.Form):
    previewed = forms.CharField(widget=forms.HiddenInput, required=False)


class LinkForm(forms.Form):
    ticket = forms.IntegerField(
        label="Ticket number",
        min_value=1,
        max_value=2**63 - 1,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "placeholder": "e.g. 1042"}),
        error_messages={
            "required": "Give the number of the ticket to link.",
            "invalid": "A ticket number is a whole number.",
            "min_value": "There is no ticket with that number.",
            "max_value": "There is no ticket with that number.",
        },
    )


def _page(problem: Problem) -> str:
    return reverse("admin:support_problem_change", args=[problem.pk])


def _may_work(request) -> bool:
    return request.user.has_perm(problems.CHANGE)


@admin.register(Problem)
class ProblemAdmin(AuditedModelAdmin):
    """The list of problems and a problem's page (``support/problem_panel.html`` above the
    form). A problem is made by error spikes, never added by hand; a superuser may delete
    one no ticket is part of."""

    list_display = [
        "title",
        "fingerprint",
        "status_badge",
        "ticket_count",
        "tenant_count",
        "opened_at",
        "solved_at",
    ]
    list_filter = ["status"]
    search_fields = ["title", "fingerprint"]
    search_help_text = "Title or fingerprint"
    fields = ["title", ("fingerprint", "status"), ("opened_at", "solved_at")]
    readonly_fields = service_owned(Problem)
    change_form_outer_before_template = "support/problem_panel.html"

    status_badge = choice_badge(
        "status", {Problem.Status.OPEN: "warning", Problem.Status.SOLVED: "success"}
    )

    def has_add_permission(self, request):
        return False  # made by error spikes at several tenants

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _tickets=Count("tickets", distinct=True),
                _tenants=Count("tickets__tenant_id", distinct=True),
            )
        )

    @display(description="Tickets", ordering="_tickets")
    def ticket_count(self, obj):
        return obj._tickets

    @display(description="Tenants", ordering="_tenants")
    def tenant_count(self, obj):
        return obj._tenants

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path(
                "<path:object_id>/update/", view(problem_update_view), name="support_problem_update"
            ),
            path("<path:object_id>/solve/", view(problem_solve_view), name="support_problem_solve"),
            path("<path:object_id>/link/", view(problem_link_view), name="support_problem_link"),
            path(
                "<path:object_id>/unlink/", view(problem_unlink_view), name="support_problem_unlink"
            ),
            *super().get_urls(),
        ]

    def get_object(self, request, object_id, from_field=None):
        # The page reads the problem for its panel before the admin reads it for the
        # form: one fetch per request serves both.
        fetched = request.__dict__.setdefault("_problems", {})
        if (object_id, from_field) not in fetched:
            fetched[object_id, from_field] = super().get_object(request, object_id, from_field)
        return fetched[object_id, from_field]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        problem = self.get_object(request, object_id)
        if problem is not None:
            tickets = problems.problem_tickets(problem=problem)
            extra_context = {
                **(extra_context or {}),
                "title": problem.title,
                "problem_panel": {
                    "problem": problem,
                    "tickets": tickets,
                    "customers": problems.problem_customers(tickets=tickets),
                    "open_count": sum(t.status in Ticket.OPEN_STATES for t in tickets),
                    "may_work": _may_work(request) and problem.is_open,
                    "link_form": LinkForm(),
                },
            }
        return super().change_view(request, object_id, form_url, extra_context)


def _confirm_page(request, problem, template, **context) -> TemplateResponse:
    return TemplateResponse(
        request,
        template,
        {
            **admin.site.each_context(request),
            "opts": Problem._meta,
            "problem": problem,
            "back": _page(problem),
            **context,
        },
    )


def problem_update_view(request, object_id: str):
    """ "Send an update…": the text, and everyone it will reach (and the open tickets it
    cannot: no requester); POST sends it to exactly those."""
    if not _may_work(request):
        raise PermissionDenied
    problem = object_or_404(Problem, object_id)
    if request.method == "POST":
        form = UpdateForm(request.POST)
        if form.is_valid():
            try:
                preview = problems.problem_update_send(
                    problem=problem,
                    body=form.cleaned_data["body"],
                    by=request.user,
                    previewed=form.cleaned_data["previewed"],
                )
            except problems.ProblemActionError as error:
                form.add_error(None, str(error))
            else:
                count = len(preview.recipients)
                messages.success(
                    request,
                    f"Update of problem #{problem.pk} recorded on {count} "
                    f"ticket{'' if count == 1 else 's'}; it is being sent to "
                    f"{', '.join(sorted({t.requester_email for t in preview.recipients}))}.",
                )
                return HttpResponseRedirect(_page(problem))
    else:
        form = UpdateForm()
    preview = problems.problem_update_preview(problem=problem)
    # The page confirms what it shows now (after a refusal too).
    token = preview_token(problems.update_preview_state(preview))
    if form.is_bound:
        form.data = form.data.copy()
        form.data["previewed"] = token
    else:
        form.initial["previewed"] = token
    return _confirm_page(
        request,
        problem,
        "support/problem_update.html",
        title=f"Send an update: problem #{problem.pk}",
        preview=preview,
        form=form,
    )


def problem_solve_view(request, object_id: str):
    """ "Solve…": the open tickets it will solve with the problem; POST solves exactly those."""
    if not _may_work(request):
        raise PermissionDenied
    problem = object_or_404(Problem, object_id)
    if request.method == "POST":
        form = SolveForm(request.POST)
        if form.is_valid():
            try:
                done = problems.problem_solve(
                    problem=problem, by=request.user, previewed=form.cleaned_data["previewed"]
                )
            except problems.ProblemActionError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, done)
                return HttpResponseRedirect(_page(problem))
    else:
        form = SolveForm()
    open_tickets = problems.problem_open_tickets(problem=problem)
    token = preview_token(problems.solve_preview_state(problem, open_tickets))
    if form.is_bound:
        form.data = form.data.copy()
        form.data["previewed"] = token
    else:
        form.initial["previewed"] = token
    return _confirm_page(
        request,
        problem,
        "support/problem_solve.html",
        title=f"Solve problem #{problem.pk}",
        open_tickets=open_tickets,
        form=form,
    )


@require_POST
def problem_link_view(request, object_id: str):
    """ "Link" on a problem's page: a ticket, by its number, joins the problem."""
    if not _may_work(request):
        raise PermissionDenied
    problem = object_or_404(Problem, object_id)
    form = LinkForm(request.POST)
    if not form.is_valid():
        report_refusal(request, " ".join(form.errors.get("ticket", [])))
        return HttpResponseRedirect(_page(problem))
    ticket = Ticket.objects.filter(pk=form.cleaned_data["ticket"]).first()
    if ticket is None:
        report_refusal(request, f"There is no ticket #{form.cleaned_data['ticket']}.")
        return HttpResponseRedirect(_page(problem))
    try:
        done = problems.problem_link(problem=problem, ticket=ticket, by=request.user)
    except problems.ProblemActionError as error:
        report_refusal(request, error)
    else:
        messages.success(request, done)
    return HttpResponseRedirect(_page(problem))


@require_POST
def problem_unlink_view(request, object_id: str):
    """ "Unlink" beside a ticket on a problem's page."""
    if not _may_work(request):
        raise PermissionDenied
    problem = object_or_404(Problem, object_id)
    form = LinkForm(request.POST)
    ticket = (
        Ticket.objects.filter(pk=form.cleaned_data["ticket"]).first() if form.is_valid() else None
    )
    if ticket is None:
        report_refusal(request, "Pick a ticket of this problem to unlink.")
        return HttpResponseRedirect(_page(problem))
    try:
        done = problems.problem_unlink(problem=problem, ticket=ticket, by=request.user)
    except problems.ProblemActionError as error:
        report_refusal(request, error)
    else:
        messages.success(request, done)
    return HttpResponseRedirect(_page(problem))
