"""Who may do what, beyond the group permissions of migration ``opsdesk.0001_roles``."""

from __future__ import annotations

SUPPORT = "Support"
ACCOUNT_MANAGERS = "Account managers"
OPS_LEADS = "Ops leads"


def user_may_edit_customer(user, customer) -> bool:
    """Account managers edit the customers they manage (and their contacts and contracts).

    Superusers edit any customer. Nobody edits a customer without the model permission.
    """
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    return customer.account_manager_id == user.pk
