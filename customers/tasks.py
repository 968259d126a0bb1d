from celery import shared_task

from customers import crm_import, entitlements


@shared_task(name="customers.entitlements_expire", ignore_result=True)
def entitlements_expire() -> int:
    """Live entitlements past their end date become expired (daily, from beat)."""
    return entitlements.entitlements_expire()


@shared_task(name="customers.crm_import_run", ignore_result=True)
def crm_import_run(import_id: int) -> str | None:
    """An uploaded CRM import: its rows taken (an import not queued is left alone)."""
    record = crm_import.crm_import_run(import_id=import_id)
    return record.status if record else None


@shared_task(name="customers.crm_imports_sweep", ignore_result=True)
def crm_imports_sweep() -> list[int]:
    """Uploaded CRM imports whose run was lost (broker down, worker died): run again."""
    return crm_import.crm_imports_sweep()
