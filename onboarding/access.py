"""Who may work an onboarding checklist task, beyond the model permission."""

from __future__ import annotations

from customers.access import user_may_edit_customer
from kit.roles import user_works_every_customer


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
