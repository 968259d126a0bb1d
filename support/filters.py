"""The triage queue's filters (django-filter) and its order."""

from __future__ import annotations

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import F, OuterRef, Q, QuerySet
from django.utils import timezone

from customers.models import Contract, Customer
from customers.selectors import current_contract_subquery, customer_match_q
from support.models import Tag, Ticket

STATUS_CHOICES = [
    ("active", "Open or waiting"),
    *Ticket.Status.choices,
    ("all", "Any status"),
]


def queue_order(queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
    """Unassigned first; then tickets still waiting for a first response, nearest
    deadline first; answered ones after them; oldest first within a tie."""
    return queryset.order_by(
        F("assignee").asc(nulls_first=True),
        F("first_responded_at").asc(nulls_first=True),
        F("first_response_due_at").asc(nulls_last=True),
        "created_at",
        "pk",
    )


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
        label="First response",
        widget=forms.Select(choices=[("", "Any"), ("true", "Overdue"), ("false", "Not overdue")]),
    )

    class Meta:
        model = Ticket
        fields = ["status", "priority", "tag", "assignee", "customer", "plan", "overdue"]

    def __init__(self, data=None, *args, request=None, **kwargs):
        data = data.copy() if data is not None else None
        if data is not None and not data.get("status"):
            data["status"] = "active"
        super().__init__(data, *args, request=request, **kwargs)
        staff = get_user_model().objects.filter(is_staff=True, is_active=True)
        self.filters["assignee"].extra["choices"] = [
            ("me", "Me"),
            ("none", "Unassigned"),
            *(
                (str(u.pk), u.get_full_name() or u.get_username())
                for u in staff.order_by("username")
            ),
        ]

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
        overdue = Q(
            status__in=Ticket.OPEN_STATES,
            first_responded_at__isnull=True,
            first_response_due_at__lte=timezone.now(),
        )
        return queryset.filter(overdue) if value else queryset.exclude(overdue)
