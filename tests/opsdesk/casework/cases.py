"""Cases as the casework tests make and find them: made directly in a state, or opened
by the product's event; the inbox's URL, a case's page, and the summaries a page lists."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone

from audit.context import acting_as
from customers.models import Entitlement, Order
from support.models import Case
from tests import builders
from tests.support.sender import deliver, entitlement_redeemed

INBOX = reverse("admin:support_case_inbox")
BULK = reverse("admin:support_case_bulk")
NOTE = "Tenant id was a typo for Acme's."


def resolve_url(case: Case, key: str) -> str:
    return reverse("admin:support_case_resolve", args=[case.pk, key])


def everything() -> tuple:
    """Orders, entitlements and cases as stored, with their history counts."""
    return (
        list(Order.objects.order_by("pk").values_list("pk", "customer_id", "fulfilment")),
        list(Entitlement.objects.order_by("pk").values_list("pk", "state", "assignee_email")),
        list(
            Case.objects.order_by("pk").values_list(
                "pk", "state", "owner_id", "acknowledged_at", "closed_at", "closing_note"
            )
        ),
        [model.history.count() for model in (Order, Entitlement, Case)],
    )


def make_case(
    summary: str,
    *,
    days_old: float = 0,
    state: str = Case.State.OPEN,
    kind: str = Case.Kind.FAILED_FULFILMENT,
    **fields,
) -> Case:
    """A case made directly in ``state``, opened ``days_old`` days ago; a closed one was
    closed an hour after it opened with the note "done"."""
    opened = fields.pop("opened_at", None) or timezone.now() - dt.timedelta(days=days_old)
    if state in Case.CLOSED_STATES:
        fields = {"closed_at": opened + dt.timedelta(hours=1), "closing_note": "done", **fields}
    with acting_as("test:fixture"):
        return builders.case(kind=kind, summary=summary, state=state, opened_at=opened, **fields)


def shown(response) -> list[str]:
    """The summaries of the cases an inbox page lists, in its order."""
    return [case.summary for case, *_ in response.context["rows"]]


def case_url(case: Case) -> str:
    return reverse("admin:support_case_change", args=[case.pk])


def redemption_case(code: str, **data) -> Case:
    """The problem-redemption case the product's ``entitlement.redeemed`` event opens."""
    deliver(entitlement_redeemed(code, **data), "msg_redeemed")
    return Case.objects.get(kind=Case.Kind.PROBLEM_REDEMPTION)
