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


def customers_editable_by(user):
    """The customers ``user`` may edit (``user_may_edit_customer``), as a queryset: what a
    form offers an account manager to choose, and what it accepts."""
    from customers.models import Customer

    if not user.is_active:
        return Customer.objects.none()
    if user.is_superuser:
        return Customer.objects.all()
    return Customer.objects.filter(account_manager=user)


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


def user_may_work_onboarding_task(user, task) -> bool:
    """Who may mark an onboarding task done, reopen it or change its owner and due date
    (besides the permission ``onboarding.change_checklisttask``): support and ops leads any
    task; an account manager the tasks of the customers they manage, and a task given to
    them by name."""
    if user_works_every_customer(user):
        return True
    if not user.is_active:
        return False
    return task.owner_id == user.pk or user_may_edit_customer(user, task.checklist.customer)
