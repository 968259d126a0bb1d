from django import template

from onboarding.access import user_may_work_onboarding_task

register = template.Library()


@register.filter
def workable_by(task, user) -> bool:
    """Whether ``user`` may mark ``task`` done or reopen it (``onboarding.access``): the
    buttons are shown only where the click would be accepted."""
    return user.has_perm("onboarding.change_checklisttask") and (
        user_may_work_onboarding_task(user, task)
    )
