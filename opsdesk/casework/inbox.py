"""The ops exception inbox (docs/product.md#exceptions): every case from every app in one
queue, oldest first, worked through the resolutions of ``opsdesk.casework.resolutions``.

Pages: the inbox (filters, bulk acknowledge/assign), and per case the confirmation page
of each resolution, resolve with a note, and waive with a reason.
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.context import acting_for
from billing.reconciliation import (
    BILLING_KINDS,
    ReconciliationBusy,
    parse_month,
    reconciliation_run,
)
from customers.selectors import customer_match_q
from kit.admin import AdminListView, back_redirect, form_errors, report_refusal
from kit.params import object_or_404
from opsdesk.casework.resolutions import RESOLUTIONS, ResolutionError, case_resolve, resolutions_for
from support.case_age import age_q, age_text
from support.cases import (
    CHANGE,
    CaseError,
    case_close,
    case_owners,
    cases_acknowledge,
    cases_assign,
)
from support.models import Case

STATE_CHOICES = [("active", "Open or acknowledged"), *Case.State.choices, ("all", "Any state")]
# A case's age, in days, in one place: from AGE_SOON_DAYS the inbox shows a waiting case's
# age amber ("soon"), from AGE_OVERDUE_DAYS red ("overdue"); AGE_FILTER_DAYS are the age
# filter's choices ("Older than a week" lists exactly the overdue ones).
AGE_SOON_DAYS = 2
AGE_OVERDUE_DAYS = 7
AGE_FILTER_DAYS = (1, 3, AGE_OVERDUE_DAYS, 30)


def _older_than(days: int) -> str:
    span = {1: "a day", 7: "a week"}.get(days, f"{days} days")
    return f"Older than {span}"


def _younger_than(days: int) -> str:
    span = {1: "a day", 7: "a week"}.get(days, f"{days} days")
    return f"Younger than {span}"


AGE_CHOICES = [(str(days), _older_than(days)) for days in AGE_FILTER_DAYS]
# With "age", a span of ages: older than a day and younger than 3 days (the home page's
# age buckets, opsdesk.home).
YOUNGER_CHOICES = [(str(days), _younger_than(days)) for days in AGE_FILTER_DAYS]


def inbox_order(queryset: QuerySet[Case]) -> QuerySet[Case]:
    """Oldest first: the longest-waiting problem is the next one to work."""
    return queryset.order_by("opened_at", "pk")


def inbox_rows(queryset: QuerySet[Case]) -> QuerySet[Case]:
    return queryset.select_related("customer", "owner", "subject_type")


def _month(value: str) -> None:
    try:
        parse_month(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def _case_owners_once(request) -> list:
    """Who may own a case, read once per request: the inbox and the saved views of it
    counted for the sidebar (opsdesk.saved_views) each build a FilterSet."""
    memo = request.__dict__ if request is not None else {}
    if "_case_owners" not in memo:
        memo["_case_owners"] = list(case_owners())
    return memo["_case_owners"]


class CaseInboxFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(
        choices=STATE_CHOICES, method="filter_state", label="State", empty_label=None
    )
    kind = django_filters.ChoiceFilter(choices=Case.Kind.choices, empty_label="Any kind")
    owner = django_filters.ChoiceFilter(method="filter_owner", label="Owner", empty_label="Anyone")
    customer = django_filters.CharFilter(
        method="filter_customer",
        label="Customer",
        widget=forms.TextInput(attrs={"placeholder": "Name or tenant id"}),
    )
    age = django_filters.ChoiceFilter(
        choices=AGE_CHOICES, method="filter_age", label="Age", empty_label="Any age"
    )
    younger = django_filters.ChoiceFilter(
        choices=YOUNGER_CHOICES, method="filter_younger", label="Younger than", empty_label="Any"
    )
    managed = django_filters.ChoiceFilter(
        choices=[("me", "Customers I manage")],
        method="filter_managed",
        label="Account manager",
        empty_label="Anyone's customers",
    )
    month = django_filters.CharFilter(
        method="filter_month",
        label="Billing month",
        widget=forms.DateInput(attrs={"type": "month"}),
        validators=[_month],
    )

    class Meta:
        model = Case
        fields = ["state", "kind", "owner", "customer", "age", "younger", "managed", "month"]

    def __init__(self, data=None, *args, request=None, **kwargs):
        data = data.copy() if data is not None else None
        if data is not None and not data.get("state"):
            data["state"] = "active"
        super().__init__(data, *args, request=request, **kwargs)
        self.owners = _case_owners_once(request)
        self.filters["owner"].extra["choices"] = [
            ("me", "Me"),
            ("none", "Nobody"),
            *((str(u.pk), u.get_full_name() or u.get_username()) for u in self.owners),
        ]

    def filter_state(self, queryset, name, value):
        if value == "all":
            return queryset
        if value == "active":
            return queryset.filter(state__in=Case.OPEN_STATES)
        return queryset.filter(state=value)

    def filter_owner(self, queryset, name, value):
        if value == "none":
            return queryset.filter(owner__isnull=True)
        if value == "me":
            return queryset.filter(owner=self.request.user)
        return queryset.filter(owner_id=value)

    def filter_customer(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(customer_match_q(value, prefix="customer__"))

    def filter_month(self, queryset, name, value):
        return queryset.filter(period=parse_month(value))

    def filter_age(self, queryset, name, value):
        # Aged as the list shows it: from when the problem began (support.case_age).
        return queryset.filter(age_q(now=timezone.now(), older_than=int(value)))

    def filter_younger(self, queryset, name, value):
        return queryset.filter(age_q(now=timezone.now(), younger_than=int(value)))

    def filter_managed(self, queryset, name, value):
        # Only "me": an account manager's own customers (customers.Customer.account_manager).
        return queryset.filter(customer__account_manager=self.request.user)


def case_age(case: Case, now: dt.datetime) -> tuple[str, str]:
    """How long it has waited, as (text, tone): "overdue" from ``AGE_OVERDUE_DAYS``,
    "soon" from ``AGE_SOON_DAYS``, "ok" before; "" once closed (the age stopped)."""
    text = age_text(case, now)  # a billing finding: since its month or its invoice's due date
    if case.closed_at:
        return text, ""
    waited = now - case.began_at
    if waited >= dt.timedelta(days=AGE_OVERDUE_DAYS):
        return text, "overdue"
    return text, "soon" if waited >= dt.timedelta(days=AGE_SOON_DAYS) else "ok"


class CaseInboxView(AdminListView):
    """Everything that went wrong, from every app, oldest first."""

    title = "Exceptions"
    permission_required = ("support.view_case",)
    template_name = "opsdesk/inbox.html"
    filterset_class = CaseInboxFilter

    @staticmethod
    def rows_for(user) -> QuerySet[Case]:
        """The cases the inbox lists to ``user`` before its filters: every case, as every
        role reads them. A saved view's count (opsdesk.saved_views) counts these, so it is
        what the view's page lists."""
        return Case.objects.all()

    def get_queryset(self):
        return inbox_rows(inbox_order(self.filtered(self.rows_for(self.request.user))))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        now = timezone.now()
        resolutions = {}
        for (kind, _), entry in RESOLUTIONS.items():
            if self.request.user.has_perm(entry.permission):
                resolutions.setdefault(kind, []).append(entry)
        context.update(
            rows=[
                (case, *case_age(case, now), resolutions.get(case.kind, []))
                for case in context["object_list"]
            ],
            can_change=self.request.user.has_perm(CHANGE),
            owners=self.filterset.owners,
        )
        return context


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=[("acknowledge", "Acknowledge"), ("assign", "Assign")])
    cases = forms.ModelMultipleChoiceField(
        queryset=Case.objects.all(),
        error_messages={"required": "Select the cases first (the boxes on the left)."},
    )
    owner = forms.IntegerField(required=False)


@require_POST
def inbox_bulk(request):
    """Acknowledge or assign the selected cases, keeping the inbox's filters."""
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied
    back = back_redirect(request, reverse("admin:support_case_inbox"))
    form = BulkForm(request.POST)
    if not form.is_valid():
        report_refusal(request, form_errors(form))
        return back
    selected = Case.objects.filter(pk__in=[c.pk for c in form.cleaned_data["cases"]])
    try:
        if form.cleaned_data["action"] == "acknowledge":
            changed = cases_acknowledge(cases=selected, by=request.user)
            verb = "acknowledged"
        else:
            owner = case_owners().filter(pk=form.cleaned_data["owner"]).first()
            if owner is None:
                raise CaseError("Pick who the cases go to.")
            changed = cases_assign(cases=selected, owner=owner, by=request.user)
            verb = f"assigned to {owner.get_full_name() or owner.get_username()}"
    except CaseError as error:
        report_refusal(request, error)
        return back
    skipped = len(form.cleaned_data["cases"]) - changed
    tail = f"; {skipped} left as they were (already so, or closed)" if skipped else ""
    messages.success(request, f"{changed} case(s) {verb}{tail}.")
    return back


class NoteForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
        label="Closing note",
        help_text="What was done and why; kept on the case and in its history.",
    )


def _case_page(case: Case) -> str:
    return reverse("admin:support_case_change", args=[case.pk])


def case_resolve_view(request, object_id: str, key: str):
    """The confirmation page of one resolution: what it will do, its fields and the
    closing note (GET); running it (POST). A refusal keeps what was typed."""
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied
    case = object_or_404(Case, object_id, Case.objects.select_related("customer", "owner"))
    entry = RESOLUTIONS.get((case.kind, key))
    if entry is None:
        messages.error(request, f"{case.get_kind_display()} cases have no such action.")
        return HttpResponseRedirect(_case_page(case))
    if not request.user.has_perm(entry.permission):
        raise PermissionDenied
    if request.method == "POST":
        form, note = entry.form_class(request.POST), NoteForm(request.POST)
        if form.is_valid() and note.is_valid():
            try:
                _, done = case_resolve(
                    case=case,
                    key=key,
                    data=form.cleaned_data,
                    note=note.cleaned_data["note"],
                    by=request.user,
                )
            except ResolutionError as error:
                report_refusal(request, error)
            else:
                messages.success(request, f"Case #{case.pk} resolved. {done}")
                return HttpResponseRedirect(_case_page(case))
    else:
        form, note = entry.form_class(initial=entry.initial(case)), NoteForm()
    unavailable = _closed(case) or entry.unavailable(case)
    return _confirm(
        request,
        case,
        entry.label,
        entry.help,
        unavailable,
        form,
        note,
        button=f"{entry.label} and resolve",
    )


def _closed(case: Case) -> str:
    if case.state in Case.CLOSED_STATES:
        return f"It is {case.get_state_display().lower()} already."
    return ""


def case_close_view(request, object_id: str, state: str):
    """Resolve with a note (fixed elsewhere) or waive with a reason."""
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied
    case = object_or_404(Case, object_id, Case.objects.select_related("customer", "owner"))
    if request.method == "POST":
        note = NoteForm(request.POST)
        if note.is_valid():
            try:
                case_close(case=case, state=state, note=note.cleaned_data["note"], by=request.user)
            except CaseError as error:
                report_refusal(request, error)
            else:
                messages.success(request, f"Case #{case.pk} {state}.")
                return HttpResponseRedirect(_case_page(case))
    else:
        note = NoteForm()
    if state == Case.State.WAIVED:
        label, help_text = "Waive", "Nothing will be done about it: say why (accepted, known, ...)."
        note.fields["note"].label = "Why it is waived"
        button = "Waive the case"
    else:
        label, help_text = "Resolve with a note", "It was fixed elsewhere: say how."
        button = "Resolve the case"
    return _confirm(request, case, label, help_text, _closed(case), None, note, button=button)


def _confirm(
    request, case, label, help_text, unavailable, form, note, *, button
) -> TemplateResponse:
    return TemplateResponse(
        request,
        "opsdesk/case_resolve.html",
        {
            **admin.site.each_context(request),
            "title": f"{label}: case #{case.pk}",
            "case": case,
            "label": label,
            "help": help_text,
            "unavailable": unavailable,
            "form": form,
            "note": note,
            "button": button,
            "opts": Case._meta,
        },
    )


@require_POST
def case_acknowledge_view(request, object_id: str):
    """The "Acknowledge" button on a case's page."""
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied
    case = object_or_404(Case, object_id)
    try:
        changed = cases_acknowledge(cases=Case.objects.filter(pk=case.pk), by=request.user)
    except CaseError as error:
        report_refusal(request, error)
    else:
        if changed:
            messages.success(request, f"Case #{case.pk} acknowledged.")
        else:
            messages.warning(request, f"Case #{case.pk} is {case.get_state_display().lower()}.")
    return back_redirect(request, _case_page(case))


@require_POST
def case_recheck_view(request, object_id: str):
    """ "Re-check now" on a billing case: reconcile its customer and month at once. A fixed
    problem's case resolves itself; one still there stays as it is, amounts brought up
    to date."""
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied
    case = object_or_404(Case, object_id, Case.objects.select_related("customer"))
    page = _case_page(case)
    if case.kind not in BILLING_KINDS or case.period is None or case.customer is None:
        messages.error(request, "Only billing findings of a known customer can be re-checked.")
        return HttpResponseRedirect(page)
    if case.state in Case.CLOSED_STATES:
        # As the page offers it: a closed case would not say what the run found.
        messages.error(
            request,
            f"Case #{case.pk} was not re-checked: it is {case.get_state_display().lower()} "
            "already.",
        )
        return HttpResponseRedirect(page)
    try:
        with acting_for(case):
            run = reconciliation_run(month=case.period, customer=case.customer)
    except ReconciliationBusy as error:
        messages.warning(request, f"Not re-checked now. {error}")
        return HttpResponseRedirect(page)
    case.refresh_from_db()
    if case.state == Case.State.RESOLVED and run.resolved:
        messages.success(request, f"Re-checked (run #{run.pk}): fixed, so the case is resolved.")
    else:
        messages.warning(
            request,
            f"Re-checked (run #{run.pk}): still found. "
            f"Expected {case.expected_amount}, found {case.found_amount}.",
        )
    return HttpResponseRedirect(page)


def case_panel(case: Case, user) -> dict:
    """What the case page shows above its form: the subject and the ways to close it."""
    subject_url = ""
    if case.subject_type_id:
        model = case.subject_type.model_class()
        if model is not None:
            opts = model._meta
            subject_url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=[case.subject_id]
            )
    may_work = user.has_perm(CHANGE) and case.state in Case.OPEN_STATES
    return {
        "case": case,
        "subject": case.subject,
        "subject_url": subject_url,
        "resolutions": [
            (entry, why_not)
            for entry, why_not in resolutions_for(case)
            if user.has_perm(entry.permission)
        ]
        if may_work
        else [],
        "may_work": may_work,
        "may_recheck": may_work and case.kind in BILLING_KINDS and case.customer_id is not None,
    }
