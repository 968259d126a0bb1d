from django import template

from opsdesk import roles

register = template.Library()


@register.filter
def workable_by(task, user) -> bool:
    """Whether ``user`` may mark ``task`` done or reopen it (``opsdesk.roles``): the
    buttons are shown only where the click would be accepted."""
    return user.has_perm("onboarding.change_checklisttask") and (
        roles.user_may_work_onboarding_task(user, task)
    )
