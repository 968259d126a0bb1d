from celery import shared_task

from customers import entitlements


@shared_task(name="customers.entitlements_expire", ignore_result=True)
def entitlements_expire() -> int:
    """Live entitlements past their end date become expired (daily, from beat)."""
    return entitlements.entitlements_expire()
