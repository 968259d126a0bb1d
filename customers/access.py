"""The row rule of customer data: an account manager's rights stop at the customers they
manage (docs/product.md#roles), whatever page or path the write comes through."""

from __future__ import annotations

from customers.models import Customer


def user_may_edit_customer(user, customer) -> bool:
    """Account managers edit the customers they manage (and their contacts and contracts).

    Superusers edit any customer. Nobody edits a customer without the model permission.
    """
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    return customer.account_manager_id == user.pk


def customers_editable_by(user):
    """The customers ``user`` may edit (``user_may_edit_customer``), as a queryset: what a
    form offers an account manager to choose, and what it accepts."""
    if not user.is_active:
        return Customer.objects.none()
    if user.is_superuser:
        return Customer.objects.all()
    return Customer.objects.filter(account_manager=user)
