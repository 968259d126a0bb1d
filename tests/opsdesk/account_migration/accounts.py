"""Accounts as the account migration tests make and compare them: a seat in any state,
the migration page's URL, what a customer owns, and what a refusal must leave."""

from __future__ import annotations

from customers.models import Contact, Customer, Entitlement
from support.models import Ticket
from tests import builders

REASON = "Acme bought Globex; one account from now on"


def seat(customer, product, code, state="issued", email="") -> Entitlement:
    """An entitlement ``code`` of ``customer`` in ``state``, assigned to ``email`` when
    assigned."""
    assignee = {"assignee_email": email} if state == Entitlement.State.ASSIGNED else {}
    return builders.entitlement(
        customer=customer, product=product, code=code, state=state, **assignee
    )


def migrate_url(customer: Customer, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/admin/customers/customer/{customer.pk}/migrate/" + (f"?{query}" if query else "")


def owners(customer: Customer) -> tuple[int, int, int]:
    """How many contacts, entitlements and tickets ``customer`` has."""
    return (
        customer.contacts.count(),
        customer.entitlements.count(),
        customer.tickets.count(),
    )


def world() -> tuple:
    """Who owns what and how much history there is: a refusal leaves it unchanged."""
    return (
        sorted(Contact.objects.values_list("email", "customer_id", "is_primary")),
        sorted(Entitlement.objects.values_list("code", "customer_id")),
        sorted(Ticket.objects.values_list("subject", "customer_id")),
        Contact.history.count(),
        Entitlement.history.count(),
        Ticket.history.count(),
    )
