"""The triage queue's filters (django-filter) and its order."""

from __future__ import annotations

import datetime as dt

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Q, QuerySet, Value
from django.utils import timezone

from customers.models import Contract, Customer
from customers.selectors import current_contract_subquery, customer_match_q
from support.models import Tag, Ticket

STATUS_CHOICES = [
    ("active", "Open or waiting"),
    *Ticket.Status.choices,
    ("all", "Any status"),
]


# Within the tickets at risk, the more urgent first.
PRIORITY_WEIGHT = {
    Ticket.Priority.URGENT: 0,
    Ticket.Priority.HIGH: 1,
    Ticket.Priority.NORMAL: 2,
    Ticket.Priority.LOW: 3,
}
_KEY = ("pk", "queue_group", "queue_weight", "sla_due_at", "created_at")


class QueueOrder:
    """``queryset`` in the queue's order (docs/product.md#triage-queue), as the sequence a
    paginator slices:

    1. tickets a clock of which is overdue or about to be (its warning passed:
       ``sla_warn_at``, ``OPSDESK_SLA_WARN_SHARE`` of the target), urgent to low, each
       priority nearest deadline first;
    2. the other tickets with a clock running, nearest deadline (``sla_due_at``) first;
    3. those waiting on the customer or with no clock running;

    oldest first within a tie. A slice is two queries whatever the number of tickets:
    the ids of the slice, each part read in order from its index (``ticket_queue_*``:
    the warning is checked in the index, a part never reads the rows it skips) and
    merged by PostgreSQL, then those rows through ``rows`` (``queue_rows``), put in the
    ids' order. ``count()`` and ``order_by()`` are the queryset's (the paginator counts
    it)."""

    ordered = True
    model = Ticket

    def __init__(self, queryset: QuerySet[Ticket], *, now: dt.datetime, rows=None):
        self.queryset = queryset.order_by()
        self.now = now
        self.rows = rows or (lambda tickets: tickets)

    def count(self) -> int:
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def order_by(self, *fields) -> QuerySet[Ticket]:
        return self.queryset.order_by(*fields)

    def first(self) -> Ticket | None:
        found = self[0:1]
        return found[0] if found else None

    def __getitem__(self, key: slice) -> list[Ticket]:
        if not isinstance(key, slice) or key.step is not None or key.stop is None:
            raise TypeError("The queue is read a slice at a time, like queue[0:50].")
        start, stop = key.start or 0, key.stop
        if stop <= start:
            return []
        ids = [row[0] for row in self._keys(stop)[start:stop]]
        found = {ticket.pk: ticket for ticket in self.rows(Ticket.objects.filter(pk__in=ids))}
        return [found[pk] for pk in ids if pk in found]

    def __iter__(self):
        raise TypeError("The queue is read a slice at a time, like queue[0:50].")

    def _keys(self, end: int) -> QuerySet:
        """The sort keys of the first ``end`` tickets of each part, in the queue's order."""
        now = self.now

        def part(tickets: QuerySet, group: int, weight: int, *order) -> QuerySet:
            return (
                tickets.annotate(queue_group=Value(group), queue_weight=Value(weight))
                .order_by(*order, "created_at", "pk")
                .values_list(*_KEY)[:end]
            )

        at_risk = [
            part(self.queryset.filter(priority=p, sla_warn_at__lte=now), 0, w, "sla_due_at")
            for p, w in PRIORITY_WEIGHT.items()
        ]
        running = part(self.queryset.filter(sla_warn_at__gt=now), 1, 0, "sla_due_at")
        others = part(
            self.queryset.filter(sla_warn_at__isnull=True),
            2,
            0,
            F("sla_due_at").asc(nulls_last=True),
        )
        return (
            at_risk[0]
            .union(*at_risk[1:], running, others, all=True)
            .order_by(
                "queue_group",
                "queue_weight",
                F("sla_due_at").asc(nulls_last=True),
                "created_at",
                "pk",
            )
        )


def queue_order(
    queryset: QuerySet[Ticket], *, now: dt.datetime | None = None, rows=None
) -> QueueOrder:
    """``queryset`` by risk, as ``QueueOrder`` says; ``rows``: what fetches the rows of
    a slice (``queue_rows`` for the queue's page)."""
    return QueueOrder(queryset, now=now or timezone.now(), rows=rows)


def queue_rows(queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """What each queue row shows, in the query that fetches the rows."""
    return (
        queryset.select_related("customer", "assignee")
        .prefetch_related("tags")
        .annotate(
            # The customer's current contract, as the ticket's page and triage rules see it.
            plan=current_contract_subquery(OuterRef("customer"), "plan"),
            contract_status=current_contract_subquery(OuterRef("customer"), "status"),
        )
    )


def _assignee_choices_once(request) -> list[tuple[str, str]]:
    """The assignee filter's choices, read once per request: the queue and the saved views
    of it counted for the sidebar (opsdesk.saved_views) each build a FilterSet."""
    memo = request.__dict__ if request is not None else {}
    if "_queue_assignee_choices" not in memo:
        staff = get_user_model().objects.filter(is_staff=True, is_active=True)
        memo["_queue_assignee_choices"] = [
            ("me", "Me"),
            ("none", "Unassigned"),
            *(
                (str(u.pk), u.get_full_name() or u.get_username())
                for u in staff.order_by("username")
            ),
        ]
    return memo["_queue_assignee_choices"]


class TicketQueueFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(
        choices=STATUS_CHOICES, method="filter_status", label="Status", empty_label=None
    )
    priority = django_filters.ChoiceFilter(choices=Ticket.Priority.choices, empty_label="Any")
    tag = django_filters.ModelChoiceFilter(
        field_name="tags",
        label="Tag",
        queryset=Tag.objects.all(),
        to_field_name="name",
        empty_label="Any",
    )
    assignee = django_filters.ChoiceFilter(
        method="filter_assignee", label="Assignee", empty_label="Anyone"
    )
    customer = django_filters.CharFilter(
        method="filter_customer",
        label="Customer",
        widget=forms.TextInput(attrs={"placeholder": "Name or tenant id"}),
    )
    plan = django_filters.ChoiceFilter(
        choices=Contract.Plan.choices, method="filter_plan", label="Plan", empty_label="Any"
    )
    overdue = django_filters.BooleanFilter(
        method="filter_overdue",
        label="Service level",
        widget=forms.Select(choices=[("", "Any"), ("true", "Overdue"), ("false", "Not overdue")]),
    )
    at_risk = django_filters.BooleanFilter(
        method="filter_at_risk",
        label="About to breach",
        widget=forms.Select(
            choices=[("", "Any"), ("true", "About to breach"), ("false", "Not about to breach")]
        ),
    )

    class Meta:
        model = Ticket
        fields = ["status", "priority", "tag", "assignee", "customer", "plan", "overdue", "at_risk"]

    def __init__(self, data=None, *args, request=None, **kwargs):
        data = data.copy() if data is not None else None
        if data is not None and not data.get("status"):
            data["status"] = "active"
        super().__init__(data, *args, request=request, **kwargs)
        self.filters["assignee"].extra["choices"] = _assignee_choices_once(request)

    def filter_status(self, queryset, name, value):
        if value == "all":
            return queryset
        if value == "active":
            return queryset.filter(status__in=Ticket.OPEN_STATES)
        return queryset.filter(status=value)

    def filter_assignee(self, queryset, name, value):
        if value == "none":
            return queryset.filter(assignee__isnull=True)
        if value == "me":
            return queryset.filter(assignee=self.request.user)
        return queryset.filter(assignee_id=value)

    def filter_customer(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # The customers first (their name's trigram index), then their tickets by id: an
        # OR across the join would read every ticket.
        customers = Customer.objects.filter(customer_match_q(value)).values_list("pk", flat=True)
        return queryset.filter(Q(customer_id__in=list(customers)) | Q(tenant_id__iexact=value))

    def filter_plan(self, queryset, name, value):
        # The current contract's plan, the one the queue's plan column shows.
        return queryset.alias(
            current_plan=current_contract_subquery(OuterRef("customer"), "plan")
        ).filter(current_plan=value)

    def filter_overdue(self, queryset, name, value):
        # A running clock past its deadline (none runs while waiting on the customer).
        overdue = Q(status=Ticket.Status.OPEN, sla_due_at__lte=timezone.now())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)

    def filter_at_risk(self, queryset, name, value):
        # support.ticket_sla.tickets_at_risk: a running clock past its warning share
        # (OPSDESK_SLA_WARN_SHARE), its deadline not passed yet.
        now = timezone.now()
        at_risk = Q(status=Ticket.Status.OPEN, sla_warn_at__lte=now, sla_due_at__gt=now)
        return queryset.filter(at_risk) if value else queryset.exclude(at_risk)
