"""Audit across apps (docs/product.md#audit): a customer's whole timeline, the global audit
log with its filters, its CSV export, and a customer's contracts and entitlements as they
were on a date.

Everything reads history rows (django-simple-history) through ``audit.timeline``; this
module only says which rows belong to a customer, which rows a filter selects and how a
change reads. It reads across customers, support, billing and onboarding, so it sits in
opsdesk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import django_filters
from django import forms
from django.apps import apps
from django.db import models
from django.utils import timezone
from simple_history.manager import HistoryManager

from audit.timeline import PAGE_SIZE, Entry, TimelinePage, state_verb, stream, timeline
from billing.models import Invoice, ReconciliationRun
from customers.models import Contract, Customer, Entitlement
from customers.selectors import customer_match_q
from customers.trace import VERBS as CUSTOMER_VERBS
from customers.trace import customer_sources as customer_record_sources
from customers.trace import while_theirs
from kit.csv_export import export_lines
from kit.dates import DateInput
from kit.params import date_in_range
from kit.people import actor_name
from onboarding.models import Checklist, ChecklistTask
from support.models import Case, Ticket, TicketComment

AUDITED_APPS = ("customers", "support", "billing", "onboarding", "opsdesk")

VERBS = {
    **CUSTOMER_VERBS,
    Ticket: state_verb(
        "status",
        {
            Ticket.Status.OPEN: "reopened",
            Ticket.Status.PENDING: "set to wait on the customer",
            Ticket.Status.SOLVED: "solved",
            Ticket.Status.CLOSED: "closed",
        },
        created="opened",
    ),
    TicketComment: state_verb("kind", {}, created="written"),
    Case: state_verb(
        "state",
        {
            Case.State.OPEN: "reopened",
            Case.State.ACKNOWLEDGED: "acknowledged",
            Case.State.RESOLVED: "resolved",
            Case.State.WAIVED: "waived",
        },
        created="raised",
    ),
    ChecklistTask: state_verb(
        "state",
        {
            ChecklistTask.State.OPEN: "reopened",
            ChecklistTask.State.DONE: "done",
            ChecklistTask.State.NOT_APPLICABLE: "no longer applies",
        },
        created="added",
    ),
    Invoice: state_verb(
        "status",
        {
            Invoice.Status.OPEN: "opened",
            Invoice.Status.PAID: "paid",
            Invoice.Status.VOID: "voided",
            Invoice.Status.UNCOLLECTIBLE: "marked uncollectible",
        },
        created="recorded",
    ),
    ReconciliationRun: state_verb(
        "status",
        {
            ReconciliationRun.Status.SUCCEEDED: "finished",
            ReconciliationRun.Status.FAILED: "failed",
        },
        created="started",
    ),
}


def audited_models() -> list[type[models.Model]]:
    """Every model of the project's apps that keeps history, in app and model order."""
    return [
        model
        for label in AUDITED_APPS
        for model in apps.get_app_config(label).get_models()
        if isinstance(getattr(model, "history", None), HistoryManager)
    ]


def visible_models(user) -> list[type[models.Model]]:
    """The audited models whose records (and so whose history) ``user`` may view."""
    return [
        model
        for model in audited_models()
        if user.has_perm(f"{model._meta.app_label}.view_{model._meta.model_name}")
    ]


# --- A customer's timeline ---------------------------------------------------------------


def customer_sources(customer: Customer) -> list[models.QuerySet]:
    """The history rows of the customer and of everything that belongs (or belonged, up
    to its move) to it: its record, contacts, contracts, orders and entitlements
    (``customers.trace``), tickets and their comments, cases, onboarding checklists and
    their tasks, invoices and reconciliation runs. Daily usage rows are left out: one a
    day per customer, written by an import, they would bury every change people made."""
    tickets = Ticket.history.model._default_manager.filter(customer_id=customer.pk)
    checklists = Checklist.history.model._default_manager.filter(customer_id=customer.pk)
    return [
        *customer_record_sources(customer),
        while_theirs(Ticket, customer),
        TicketComment.history.filter(ticket_id__in=tickets.values("id")),
        while_theirs(Case, customer),
        while_theirs(Checklist, customer),
        ChecklistTask.history.filter(checklist_id__in=checklists.values("id")),
        while_theirs(Invoice, customer),
        while_theirs(ReconciliationRun, customer),
    ]


def customer_audit(
    customer: Customer, *, page: int = 1, page_size: int = PAGE_SIZE
) -> TimelinePage:
    """Page ``page`` of the customer's audit timeline, newest first."""
    return timeline(
        customer_sources(customer), verbs=VERBS, page=page, page_size=page_size, subject=customer
    )


# --- The global log ----------------------------------------------------------------------


def model_key(model: type[models.Model]) -> str:
    return model._meta.label_lower


# How a history row of a model without its own customer column reaches the customer:
# through its parent's current row.
_THROUGH_PARENT = {TicketComment: "ticket", ChecklistTask: "checklist"}


def _for_customers(rows: models.QuerySet, customer_ids: models.QuerySet) -> models.QuerySet | None:
    """``rows`` (history of one model) narrowed to the customers ``customer_ids``, or None
    for a model that belongs to no customer."""
    model = rows.model.instance_type
    if model is Customer:
        return rows.filter(id__in=customer_ids)
    if any(f.name == "customer" for f in model._meta.concrete_fields):
        return rows.filter(customer_id__in=customer_ids)
    parent = _THROUGH_PARENT.get(model)
    if parent is None:
        return None
    related = model._meta.get_field(parent).related_model
    parents = related._base_manager.filter(customer_id__in=customer_ids).values("id")
    return rows.filter(**{f"{parent}_id__in": parents})


class AuditLogFilter(django_filters.FilterSet):
    """The log's filters. There is no one queryset to filter (the log spans a history
    table per model), so each filter only validates its value and ``sources()`` applies
    the cleaned values to each history model's rows."""

    actor = django_filters.CharFilter(
        label="Actor",
        method="validated_only",
        widget=forms.TextInput(attrs={"placeholder": "a username, task:…, webhook:…"}),
    )
    model = django_filters.ChoiceFilter(
        label="Record type", method="validated_only", empty_label="Any"
    )
    customer = django_filters.CharFilter(
        label="Customer",
        method="validated_only",
        widget=forms.TextInput(attrs={"placeholder": "Name or tenant id"}),
    )
    # Bounded (kit.params): ``until`` + 1 day of 9999-12-31 overflowed into a 500.
    since = django_filters.DateFilter(
        label="From",
        method="validated_only",
        widget=DateInput(),
        validators=[date_in_range],
    )
    until = django_filters.DateFilter(
        label="To",
        method="validated_only",
        widget=DateInput(),
        validators=[date_in_range],
    )

    class Meta:
        model = Customer  # placeholder: the log spans many models
        fields: list[str] = []

    def __init__(self, data=None, *args, user=None, **kwargs):
        super().__init__(data, *args, queryset=Customer.objects.none(), **kwargs)
        self.models = visible_models(user) if user is not None else audited_models()
        self.filters["model"].extra["choices"] = [
            (model_key(m), str(m._meta.verbose_name).capitalize()) for m in self.models
        ]

    def validated_only(self, queryset, name, value):
        return queryset

    def sources(self) -> list[models.QuerySet]:
        """One history queryset per model the filters select (after ``is_valid()``)."""
        values = self.form.cleaned_data
        wanted = values.get("model")
        chosen = [m for m in self.models if not wanted or model_key(m) == wanted]
        customer_ids = None
        if customer_text := (values.get("customer") or "").strip():
            customer_ids = Customer.objects.filter(customer_match_q(customer_text)).values("id")
        tz = timezone.get_current_timezone()
        sources = []
        for model in chosen:
            rows = model.history.all()
            if actor := (values.get("actor") or "").strip():
                rows = rows.filter(history_actor__icontains=actor)
            if values.get("since"):
                rows = rows.filter(
                    history_date__gte=dt.datetime.combine(values["since"], dt.time.min, tz)
                )
            if values.get("until"):
                next_day = values["until"] + dt.timedelta(days=1)
                rows = rows.filter(history_date__lt=dt.datetime.combine(next_day, dt.time.min, tz))
            if customer_ids is not None:
                rows = _for_customers(rows, customer_ids)
                if rows is None:
                    continue
            sources.append(rows)
        return sources


def audit_log(
    filterset: AuditLogFilter, *, page: int = 1, page_size: int = PAGE_SIZE
) -> TimelinePage:
    """Page ``page`` of the filtered log, newest first, each row on its own: grouping a
    bulk operation would read every row the filters select, and the log spans them all."""
    return timeline(
        filterset.sources(), verbs=VERBS, page=page, page_size=page_size, collapse=False
    )


# --- CSV export --------------------------------------------------------------------------

CSV_COLUMNS = [
    "when",
    "actor",
    "record type",
    "record id",
    "record",
    "event",
    "changes",
    "reason",
    "done for",
]


def csv_row(entry: Entry) -> list[str]:
    return [
        timezone.localtime(entry.at).isoformat(),
        entry.actor,
        entry.record.model,
        str(entry.record.pk),
        entry.record.text,
        entry.verb,
        "; ".join(f"{c.field}: {c.old} → {c.new}" for c in entry.changes),
        entry.reason,
        entry.done_for.text if entry.done_for else "",
    ]


def csv_lines(sources: Iterable[models.QuerySet]) -> Iterator[str]:
    """The export, line by line, header first; rows read as they are written. Actors,
    record names, reasons and old and new values come from outside: cells that would
    start a spreadsheet formula are neutralised (kit.csv_export)."""
    entries = stream(sources, verbs=VERBS)
    return export_lines(CSV_COLUMNS, (csv_row(entry) for entry in entries))


# --- As of a date ------------------------------------------------------------------------


@dataclass(frozen=True)
class AsOf:
    date: dt.date
    moment: dt.datetime  # the end of that day, local time
    contracts: list  # history rows: each object as it was then, ``actor`` who made it so
    entitlements: list


def _as_of_rows(model: type[models.Model], customer: Customer, moment: dt.datetime):
    """For each object of ``model`` that ever belonged to ``customer``, its last history
    row before ``moment``, kept when it still belonged to the customer then and was not
    deleted: one query."""
    rows = model.history.model._default_manager
    latest = (
        rows.filter(
            id__in=rows.filter(customer_id=customer.pk).values("id"),
            history_date__lt=moment,
        )
        .order_by("id", "-history_date", "-history_id")
        .distinct("id")
        .values("history_id")
    )
    return (
        rows.filter(history_id__in=latest, customer_id=customer.pk)
        .exclude(history_type="-")
        .select_related("history_user")
    )


def _named(rows: Iterable) -> list:
    """``rows`` (history rows), each with ``actor``: who made it, by name."""
    rows = list(rows)
    for row in rows:
        row.actor = actor_name(row.history_actor, row.history_user)
    return rows


def customer_as_of(customer: Customer, date: dt.date) -> AsOf:
    """The customer's contracts and entitlements as they were at the end of ``date``
    (local time): two queries."""
    tz = timezone.get_current_timezone()
    moment = dt.datetime.combine(date + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    contracts = _named(_as_of_rows(Contract, customer, moment).order_by("start_date", "id"))
    entitlements = _named(
        _as_of_rows(Entitlement, customer, moment)
        .select_related("product")
        .order_by("product__name", "code")
    )
    return AsOf(date=date, moment=moment, contracts=contracts, entitlements=entitlements)
