"""``usage.daily``: the product's daily usage report of a tenant, kept as ``UsageDaily``."""

from __future__ import annotations

import logging

from customers.models import Customer, UsageDaily
from support.models import WebhookEvent
from support.webhook_schemas import UsageDailyReport
from support.webhooks import handles

logger = logging.getLogger(__name__)

REPORTED_FIELDS = (
    "active_users_1d",
    "active_users_7d",
    "last_login_at",
    "requests",
    "errors",
)


@handles("usage.daily")
def usage_record(event: WebhookEvent, data: UsageDailyReport) -> UsageDaily | None:
    """Upsert the tenant's usage of ``data.date``: a later report of the same day replaces
    the values (through ``save()``, so history keeps the earlier ones); a report equal to
    the stored one changes nothing, so processing an event again has the effect of once.

    Reports of one tenant are serialized by a lock on its customer row. An unknown
    tenant's report is not kept: the event ends processed with a warning on it
    (``event_process`` saves the event after the handler), never retried.
    """
    customer = (
        Customer.objects.select_for_update().filter(external_id=data.tenant_id).only("pk").first()
    )
    if customer is None:
        event.warning = f"unknown tenant {data.tenant_id!r}: usage of {data.date} not recorded"
        logger.warning("usage.daily %s: %s", event.webhook_id, event.warning)
        return None
    values = {name: getattr(data, name) for name in REPORTED_FIELDS}
    usage = UsageDaily.objects.filter(customer=customer, date=data.date).first()
    if usage is None:
        return UsageDaily.objects.create(customer=customer, date=data.date, **values)
    if any(getattr(usage, name) != value for name, value in values.items()):
        for name, value in values.items():
            setattr(usage, name, value)
        usage.save()
    return usage
