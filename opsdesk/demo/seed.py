"""Demo data for ``manage.py seed_demo``: deterministic, idempotent, history-keeping.

Everything is derived from ``(seed, customer index, today)``: each customer draws from
random generators of its own (one per aspect: contacts, contracts, usage, ...), so a
larger ``customers`` is a superset of a smaller one and a longer ``days`` leaves the
customers, contracts and tickets unchanged. Rows are inserted only when their natural
key (tenant id, order id, code, (customer, date), invoice id, (customer, subject),
case dedupe key, ...) is not there yet, so a second run writes nothing at all.

Dates are relative to ``today`` (UTC): usage ends yesterday, tickets are at most 45 days
old, one contract ends within 30 days. The same seed on the same day gives the same data.

Every row is written through ``audit.bulk`` with the history of its past
(``opsdesk.demo.pasts``): its creation row at the moment it was created (a contract's
signing, a ticket's opening, a code's issue...) and a row for each later change at its
own moment, by the demo staff member or the webhook or task that made it; so traces,
timelines, the as-of view and the reports tell the demo's story as it happened. What
the demo runs through the application's own services (the reconciliation of the year,
the onboarding checklists) is attributed to whoever runs this (``command:seed_demo``);
the checklists are dated at their contract's start and their tasks' completion.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import reset_queries, transaction
from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from audit.bulk import insert_with_history
from audit.context import acting_as, recorded_at, system_label
from billing.models import Invoice, InvoiceImport
from billing.reconciliation import reconciliation_run
from kit.months import add_months, month_start
from onboarding.demo import seed_onboarding
from opsdesk.demo import pasts
from opsdesk.demo.catalogue import DEFAULT_CHUNK_SIZE, DEFAULT_CUSTOMERS, DEFAULT_DAYS, DEFAULT_SEED
from opsdesk.demo.pasts import epoch
from opsdesk.demo.planners import customer_plan
from opsdesk.demo.writers import ensure_reference_data, write_inbox, write_plans
from opsdesk.health.digest import digest_build, digest_recipients
from opsdesk.health.signals import signals_sweep
from opsdesk.health.tasks import digests_send
from opsdesk.models import DigestDelivery


@dataclass
class SeedResult:
    """What one run created, per kind of row."""

    customers: int
    days: int
    seed: int
    created: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.created.values())

    def summary(self) -> str:
        order = (
            "users", "tags", "products", "customers", "contacts", "contracts", "orders",
            "entitlements", "usage rows", "invoices", "webhook events", "tickets",
            "ticket tags", "cases", "checklist templates", "template items", "checklists",
            "checklist tasks",
        )  # fmt: skip
        parts = ", ".join(f"{self.created[name]} {name}" for name in order)
        return (
            f"seed_demo (seed {self.seed}, {self.customers} customers, {self.days} days): "
            f"created {self.total} rows: {parts} in {self.seconds:.1f}s"
        )


def seed_demo(
    *,
    customers: int = DEFAULT_CUSTOMERS,
    days: int = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    today: dt.date | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[str], None] | None = None,
) -> SeedResult:
    """Create whatever of the demo data set ``(customers, days, seed)`` is missing.

    Idempotent: a second run with the same arguments on the same day creates no row and
    no history row. Each chunk of customers is one transaction, so an interrupted run
    keeps whole customers and a rerun completes it. History is attributed to the current
    actor (``audit.context``): run it inside ``acting_as`` or from ``AuditedCommand``.
    """
    started = time.monotonic()
    today = today or timezone.now().date()
    result = SeedResult(customers=customers, days=days, seed=seed)
    created = result.created
    with transaction.atomic():
        refs = ensure_reference_data(created, today=today)
        write_inbox(seed=seed, today=today, refs=refs, created=created)
    for first in range(0, customers, chunk_size):
        last = min(first + chunk_size, customers)
        with transaction.atomic():
            plans = [
                customer_plan(seed=seed, index=index, today=today, days=days, refs=refs)
                for index in range(first, last)
            ]
            write_plans(plans, refs, created)
        # With DEBUG on, Django keeps every query's SQL: a 2,000-row INSERT each.
        reset_queries()
        if progress is not None:
            progress(
                f"seed_demo: customers {first + 1}-{last} of {customers}, "
                f"{result.total} rows created, {time.monotonic() - started:.1f}s"
            )
    if created["invoices"]:
        # The billing findings come from the real reconciliation of the invoiced year,
        # so the demo's ops inbox shows exactly what a daily run would.
        this_month = month_start(today)
        for back in range(11, -1, -1):
            run = reconciliation_run(month=add_months(this_month, -back), today=today)
            created["cases"] += run.opened
        record_invoice_imports()
    with transaction.atomic():
        seed_onboarding(
            seed=seed,
            today=today,
            created=created,
            set_up_at=epoch(today),
            set_up_by=refs.users["admin"],
        )
    if created["customers"]:
        sweep_signals(today=today)
    result.seconds = time.monotonic() - started
    return result


# Days of health signals the demo starts with: the digest's "new", "still open" and
# "resolved" parts all have something to show.
SIGNAL_DAYS = 7


def sweep_signals(*, today: dt.date) -> None:
    """The signals' sweeps of the last SIGNAL_DAYS digest dates up to yesterday and the
    digests they were sent in, each at 07:00 UTC of its day by the daily digest's task, as
    beat would have run them (the deliveries are recorded, not mailed again); today's
    sweep is the digest's, when it is sent."""
    for back in range(SIGNAL_DAYS, 0, -1):
        day = today - dt.timedelta(days=back)
        at = dt.datetime.combine(day, dt.time(7), tzinfo=dt.UTC)
        with acting_as(system_label("task", digests_send.name)), recorded_at(at):
            signals_sweep(date=day)
            _record_digests(day, at)


def _record_digests(day: dt.date, at: dt.datetime) -> None:
    """Each recipient's digest of ``day`` as sent at ``at``: its subject and counts as
    ``digest_build`` gives them after that day's sweep."""
    for recipient in digest_recipients():
        if not recipient.email:
            continue  # the real send fails for want of an address; nothing to record
        digest = digest_build(date=day, recipient=recipient)
        insert_with_history(
            DigestDelivery(
                kind=DigestDelivery.Kind.DIGEST,
                digest_date=day,
                recipient_key=recipient.key,
                recipient_id=recipient.user_id,
                email=recipient.email,
                status=DigestDelivery.Status.SENT,
                subject=digest.subject[:300],
                customer_count=len(digest.attention) + len(digest.others),
                attention_count=len(digest.attention),
                attempts=1,
                claimed_at=at,
                sent_at=at,
            ),
            unique=["digest_date", "recipient_key"],
        )


def record_invoice_imports() -> None:
    """The record of each day's import of the billing export (``billing.InvoiceImport``,
    what the freshness panel reads), from the invoices' history: a day's import created
    the invoices first seen that day and updated those paid since. Recorded once, when the
    demo's invoices are first seeded."""
    actor = pasts.IMPORT_ACTOR
    if InvoiceImport.objects.filter(started_by=actor).exists():
        return
    days = (
        Invoice.history.filter(history_actor=actor)
        .annotate(day=TruncDate("history_date", tzinfo=dt.UTC))
        .values("day")
        .annotate(
            first=Min("history_date"),
            new=Count("history_id", filter=Q(history_type="+")),
            changed=Count("history_id", filter=Q(history_type="~")),
        )
        .order_by("day")
    )
    for day in days:
        with acting_as(actor), recorded_at(day["first"]):
            insert_with_history(
                InvoiceImport(
                    received_at=day["first"],
                    file_name=f"invoices-{day['day']:%Y-%m-%d}.csv",
                    started_by=actor,
                    status=InvoiceImport.Status.SUCCEEDED,
                    created=day["new"],
                    updated=day["changed"],
                ),
                unique=(),
            )
