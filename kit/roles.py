"""The staff roles: the group names every layer refers to, and who works every customer.

What each group may do (its model permissions) is granted by migration
``opsdesk.0001_roles`` and its successors; the rules that stop at one customer live with
the data they guard (``customers.access``, ``onboarding.access``)."""

from __future__ import annotations

SUPPORT = "Support"
ACCOUNT_MANAGERS = "Account managers"
OPS_LEADS = "Ops leads"


def user_works_every_customer(user) -> bool:
    """Support and ops leads work every customer's tickets, cases and onboarding tasks;
    an account manager's rights stop at the customers they manage."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    if not hasattr(user, "_works_every_customer"):  # once per request's user
        user._works_every_customer = user.groups.filter(name__in=[SUPPORT, OPS_LEADS]).exists()
    return user._works_every_customer
