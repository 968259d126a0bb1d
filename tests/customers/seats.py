"""Entitlements as the entitlement workflow tests make and check them: one written
directly in any state, the workflow page's URL, and the state a refusal must leave."""

from __future__ import annotations

from django.urls import reverse

from audit.context import acting_as
from customers.models import Entitlement
from tests import builders

REASON = "Seat moved after the reorganisation"


def make(customer, product, code: str, state: str = "issued", email: str = "") -> Entitlement:
    """An entitlement in ``state`` written directly (the services have their own tests):
    ``email`` is its assignee and, when redeemed, who redeemed it."""
    redeemed = {"redeemed_by_email": email} if state == Entitlement.State.REDEEMED else {}
    with acting_as("test:fixture"):
        return builders.entitlement(
            customer=customer,
            product=product,
            code=code,
            state=state,
            assignee_email=email,
            **redeemed,
        )


def page(key: str, *entitlements: Entitlement, **params) -> str:
    """The confirmation page of workflow ``key`` for ``entitlements``."""
    query = "&".join(
        [f"ids={e.pk}" for e in entitlements] + [f"{k}={v}" for k, v in params.items()]
    )
    return f"{reverse('admin:customers_entitlement_workflow', args=[key])}?{query}"


def world() -> list[tuple]:
    """Every entitlement's state and history count: a refusal leaves these unchanged."""
    return [
        (e.code, e.customer_id, e.state, e.assignee_email, e.history.count())
        for e in Entitlement.objects.order_by("pk")
    ] + [("history rows", Entitlement.history.count())]
