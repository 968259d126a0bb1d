from celery import shared_task

from customers.entitlements import entitlements_expire


@shared_task(name="customers.expire_entitlements", ignore_result=True)
def expire_entitlements() -> int:
    """Live entitlements past their end date become expired (daily, from beat)."""
    return entitlements_expire()
