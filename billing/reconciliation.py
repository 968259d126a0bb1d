"""Billing reconciliation (docs/product.md#billing-reconciliation): what each customer should
have been invoiced for a month, compared with what was, as one set-based query.

``billing_comparison`` is that query: PostgreSQL joins contracts, usage and invoices and
sums them per customer and month, for any range of months and all customers or one (the
customer page's billing tab uses it too). ``reconciliation_run`` turns its rows into
findings, ``support.Case`` rows of the billing kinds, through the case lifecycle of
``support.cases`` (``cases_open``, ``cases_raise_again``, ``cases_close``), in a fixed
number of queries whatever the number of customers:

- an unchanged problem keeps its one case (owner, notes, history) and only its amounts
  are brought up to date;
- a problem no longer found resolves its case, with a note saying which run found it
  fixed; a problem found again reopens a case the run had resolved (never one a person
  waived);
- a new problem opens a case.

Rules (each number a setting): expected = monthly fees of the contracts active in the
month (full month, no proration) + max(0, peak ``active_users_7d`` in the month - their
seats) x the latest contract's price per extra seat. "Active in the month": status
active or ended, and its dates overlap the month. Invoices count when their period
starts in the month and they are issued (not draft, not void). The amount is compared
only for a single invoice in the contract's currency: duplicates and a wrong currency
are findings of their own and would make the amount comparison noise. What is off with a
month is ``mismatch_kinds``, an amount ``amount_mismatch``: the billing tab asks them too.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from audit.bulk import update_with_history
from billing.models import Invoice, ReconciliationRun
from customers.models import Contract, Customer
from kit import params as kit_params
from kit.months import add_months, month_end, month_start, months_between
from kit.people import actor_name
from support.cases import case_dedupe_key, cases_close, cases_open, cases_raise_again
from support.models import Case

Kind = Case.Kind
BILLING_KINDS = (
    Kind.MISSING_INVOICE,
    Kind.AMOUNT_MISMATCH,
    Kind.INVOICE_WITHOUT_CONTRACT,
    Kind.CURRENCY_MISMATCH,
    Kind.DUPLICATE_INVOICE,
    Kind.OVERDUE_INVOICE,
)


class ReconciliationBusy(Exception):
    """Another run of the same month is writing; this one did not start."""


# The months a reconciliation can be about: from the first invoices any customer could
# have to next month (a contract starting next month is expected there already).
EARLIEST_MONTH = dt.date(2000, 1, 1)


def latest_month(today: dt.date | None = None) -> dt.date:
    return add_months(month_start(today or timezone.now().date()), 1)


def parse_month(text: str, *, today: dt.date | None = None) -> dt.date:
    """``2026-10`` → 1 Oct 2026, for a real month from ``EARLIEST_MONTH`` to next month;
    ``ValueError`` with a clear message otherwise. The one rule of the ``reconcile``
    command, the admin's start form and the inbox's month filter; what a month looks like
    is kit.params' rule."""
    value = (text or "").strip()
    try:
        month = kit_params.parse_month(value, min=dt.date.min, max=dt.date.max)
    except kit_params.ParamError:
        raise ValueError(f"{text!r} is not a month like 2026-10.") from None
    latest = latest_month(today)
    if not EARLIEST_MONTH <= month <= latest:
        raise ValueError(
            f"{value} is outside the months that can be reconciled: "
            f"{EARLIEST_MONTH:%Y-%m} to {latest:%Y-%m}."
        )
    return month


# One row per (customer, month) with a contract active in the month or an issued invoice
# for it; invoices of unknown tenants are keyed by their tenant id.
# The months are a series of integers and usage is grouped by a month of that series, so
# the planner knows how many rows to expect: PostgreSQL estimates a series of dates at
# 1,000 rows and a month computed from each usage day as one group a day, estimates that
# made it compile the query (JIT), which took longer than running it (bench.reconcile).
COMPARISON_SQL = """
WITH months AS (
    SELECT (%(first)s::date + make_interval(months => n))::date AS month,
           (%(first)s::date + make_interval(months => n + 1) - interval '1 day')::date
               AS month_end
    FROM generate_series(0, %(months)s - 1) AS n
),
contracts AS (
    SELECT c.customer_id, m.month,
           sum(c.monthly_fee) AS fees,
           sum(c.seats) AS seats,
           (array_agg(c.price_per_extra_seat ORDER BY c.start_date DESC, c.id DESC))[1]
               AS extra_seat_price,
           (array_agg(c.currency ORDER BY c.start_date DESC, c.id DESC))[1] AS currency,
           (array_agg(c.id ORDER BY c.start_date DESC, c.id DESC))[1] AS contract_id
    FROM customers_contract c
    JOIN months m ON c.start_date <= m.month_end
                 AND (c.end_date IS NULL OR c.end_date >= m.month)
    WHERE c.status IN ('active', 'ended') {contract_filter}
    GROUP BY c.customer_id, m.month
),
peaks AS (
    SELECT u.customer_id, m.month, max(u.active_users_7d) AS peak
    FROM customers_usagedaily u
    JOIN months m ON u.date BETWEEN m.month AND m.month_end
    WHERE u.date BETWEEN %(first)s AND %(last_end)s {usage_filter}
    GROUP BY 1, 2
),
invoices AS (
    SELECT i.customer_id,
           CASE WHEN i.customer_id IS NULL THEN i.tenant_id END AS tenant_id,
           date_trunc('month', i.period_start)::date AS month,
           count(*) AS invoice_count,
           sum(i.amount_due) AS invoiced,
           array_agg(i.id ORDER BY i.issued_at, i.id) AS invoice_ids,
           array_agg(DISTINCT i.currency) AS currencies,
           array_agg(i.id ORDER BY i.due_at, i.id)
               FILTER (WHERE i.status = 'open' AND i.due_at < %(overdue_before)s)
               AS overdue_ids
    FROM billing_invoice i
    WHERE i.period_start BETWEEN %(first)s AND %(last_end)s
      AND i.status NOT IN ('draft', 'void') {invoice_filter}
    GROUP BY 1, 2, 3
)
SELECT coalesce(c.customer_id, i.customer_id) AS customer_id,
       i.tenant_id,
       coalesce(c.month, i.month) AS month,
       c.contract_id,
       c.currency AS contract_currency,
       c.fees + greatest(coalesce(p.peak, 0) - c.seats, 0) * c.extra_seat_price AS expected,
       p.peak,
       c.seats,
       coalesce(i.invoice_count, 0) AS invoice_count,
       i.invoiced,
       i.invoice_ids,
       i.currencies,
       i.overdue_ids
FROM contracts c
FULL OUTER JOIN invoices i ON i.customer_id = c.customer_id AND i.month = c.month
LEFT JOIN peaks p ON p.customer_id = c.customer_id AND p.month = c.month
ORDER BY 3, 1, 2
"""


@dataclass(frozen=True)
class Comparison:
    """Expected against invoiced for one customer (or unknown tenant) and month."""

    customer_id: int | None
    tenant_id: str | None
    month: dt.date
    contract_id: int | None
    contract_currency: str | None
    expected: Decimal | None
    peak: int | None
    seats: int | None
    invoice_count: int
    invoiced: Decimal | None
    invoice_ids: list[int]
    currencies: list[str]
    overdue_ids: list[int]


def billing_comparison(
    *,
    first: dt.date,
    last: dt.date,
    customer: Customer | None = None,
    today: dt.date | None = None,
) -> list[Comparison]:
    """The months from ``first`` to ``last`` (any days in them), for every customer or
    one, in one query."""
    first, last = month_start(first), month_start(last)
    today = today or timezone.now().date()
    params = {
        "first": first,
        "months": months_between(first, last) + 1,
        "last_end": month_end(last),
        "overdue_before": today - dt.timedelta(days=settings.OPSDESK_OVERDUE_AFTER_DAYS),
    }
    filters = {"contract_filter": "", "usage_filter": "", "invoice_filter": ""}
    if customer is not None:
        params["customer"] = customer.pk
        filters = {
            "contract_filter": "AND c.customer_id = %(customer)s",
            "usage_filter": "AND u.customer_id = %(customer)s",
            "invoice_filter": "AND i.customer_id = %(customer)s",
        }
    with connection.cursor() as cursor:
        cursor.execute(COMPARISON_SQL.format(**filters), params)
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
    return [
        Comparison(
            **{
                **row,
                "invoice_ids": row["invoice_ids"] or [],
                "currencies": row["currencies"] or [],
                "overdue_ids": row["overdue_ids"] or [],
            }
        )
        for row in rows
    ]


def tolerance(expected: Decimal) -> Decimal:
    """How far an invoice may be from what was expected: the larger of
    ``OPSDESK_RECONCILE_TOLERANCE_MIN`` and ``OPSDESK_RECONCILE_TOLERANCE_RATE`` of it
    (1.00 and 0.5% by default), as the settings' strict helpers parsed them (Decimals)."""
    return max(
        settings.OPSDESK_RECONCILE_TOLERANCE_MIN,
        (expected * settings.OPSDESK_RECONCILE_TOLERANCE_RATE).quantize(Decimal("0.01")),
    )


def amount_mismatch(expected: Decimal, amount: Decimal) -> bool:
    """Whether ``amount`` is further from ``expected`` than ``tolerance`` allows
    (docs/product.md: |amount_due - expected| > max(1.00, 0.5% of expected)): the one amount
    rule of reconciliation's findings and of the billing tab's colours."""
    return abs(amount - expected) > tolerance(expected)


@dataclass
class Finding:
    """One problem, as the case that tracks it will show it."""

    kind: str
    key: str
    customer_id: int | None
    month: dt.date
    summary: str
    expected: str
    found: str
    expected_amount: Decimal | None
    found_amount: Decimal | None
    subject: tuple[type, int] | None
    details: dict = field(default_factory=dict)


def _money(amount: Decimal | None, currency: str | None) -> str:
    return "—" if amount is None else f"{amount:,.2f} {currency or ''}".strip()


def invoice_due_by(month: dt.date) -> dt.date:
    """The day after which a month with no invoice has a missing one: billing invoices a
    month in arrears, so not before the month is over and its grace days have passed."""
    return month_end(month) + dt.timedelta(days=settings.OPSDESK_INVOICE_GRACE_DAYS)


def mismatch_kinds(row: Comparison, *, today: dt.date) -> list[str]:
    """What is wrong with the invoicing of ``row``'s month, as finding kinds: an invoice
    without an active contract; a missing invoice (something expected, nothing issued,
    and the month's invoice due: ``invoice_due_by``); invoices in a currency other than
    the contract's; duplicate invoices; or, for one invoice in the contract's currency,
    an amount mismatch (``amount_mismatch``). Overdue invoices are findings of their own
    (``row.overdue_ids``). The one decision of what reconciliation finds and of what the
    customer page's billing tab marks off."""
    if row.contract_id is None:
        return [Kind.INVOICE_WITHOUT_CONTRACT] if row.invoice_ids else []
    if not row.invoice_ids:
        due = row.expected and row.expected > 0 and today > invoice_due_by(row.month)
        return [Kind.MISSING_INVOICE] if due else []
    kinds = []
    wrong_currency = bool(set(row.currencies) - {row.contract_currency})
    if wrong_currency:
        kinds.append(Kind.CURRENCY_MISMATCH)
    if len(row.invoice_ids) > 1:
        kinds.append(Kind.DUPLICATE_INVOICE)
    elif not wrong_currency and amount_mismatch(row.expected, row.invoiced):
        kinds.append(Kind.AMOUNT_MISMATCH)
    return kinds


def findings_for(
    row: Comparison,
    invoices: dict[int, Invoice],
    customers: dict[int, tuple[str, str]],
    today: dt.date,
) -> list[Finding]:
    """Every finding of one comparison row (docs/product.md's six kinds). ``customers``: the
    name and tenant id of each customer id. Cases are keyed by tenant id and month
    (``missing_invoice:tenant:acme-7f3a:2026-10``), an overdue one by invoice id too."""
    month = f"{row.month:%Y-%m}"
    if row.customer_id is not None:
        who, tenant = customers[row.customer_id]
    else:
        who, tenant = f"Unknown tenant {row.tenant_id}", row.tenant_id
    ident = f"tenant:{tenant}"
    issued = [invoices[pk] for pk in row.invoice_ids]
    numbers = ", ".join(invoice.number for invoice in issued)
    details = {"month": month, "tenant_id": tenant, "peak": row.peak, "seats": row.seats}
    contract = (Contract, row.contract_id) if row.contract_id else None
    first_invoice = (Invoice, issued[0].pk) if issued else None

    def finding(
        kind, summary, expected, found, expected_amount, found_amount, subject, *extra, since=None
    ):
        return Finding(
            kind=kind,
            key=case_dedupe_key(kind, ident, month, *extra),
            customer_id=row.customer_id,
            month=row.month,
            summary=summary,
            expected=expected,
            found=found,
            expected_amount=expected_amount,
            found_amount=found_amount,
            subject=subject,
            # When the problem began (support.Case.began_at): the month, or ``since``.
            details={**details, "since": f"{since or row.month:%Y-%m-%d}"},
        )

    found = []
    currency = row.contract_currency
    kinds = mismatch_kinds(row, today=today)
    if Kind.INVOICE_WITHOUT_CONTRACT in kinds:
        found.append(
            finding(
                Kind.INVOICE_WITHOUT_CONTRACT,
                f"{who}: invoiced for {month} without an active contract",
                "no invoice: no contract was active in the month",
                f"{len(issued)} invoice(s): {numbers}",
                Decimal("0.00"),
                row.invoiced,
                first_invoice,
            )
        )
    if Kind.MISSING_INVOICE in kinds:
        found.append(
            finding(
                Kind.MISSING_INVOICE,
                f"{who}: no invoice for {month}",
                f"an invoice in {currency} by {invoice_due_by(row.month):%d %b %Y}",
                "no invoice issued",
                row.expected,
                None,
                contract,
            )
        )
    if Kind.CURRENCY_MISMATCH in kinds:
        wrong = sorted(set(row.currencies) - {currency})
        found.append(
            finding(
                Kind.CURRENCY_MISMATCH,
                f"{who}: {month} invoiced in {', '.join(wrong)}, contract in {currency}",
                f"invoices in {currency}",
                f"{numbers} in {', '.join(row.currencies)}",
                row.expected,
                row.invoiced,
                first_invoice,
            )
        )
    if Kind.DUPLICATE_INVOICE in kinds:
        found.append(
            finding(
                Kind.DUPLICATE_INVOICE,
                f"{who}: {len(issued)} invoices for {month}",
                "one invoice for the month",
                f"{len(issued)} invoices: {numbers}",
                row.expected,
                row.invoiced,
                first_invoice,
            )
        )
    if Kind.AMOUNT_MISMATCH in kinds:
        difference = row.invoiced - row.expected
        found.append(
            finding(
                Kind.AMOUNT_MISMATCH,
                f"{who}: invoice {numbers} is {_money(abs(difference), currency)} "
                f"{'above' if difference > 0 else 'below'} what {month} should cost",
                f"in {currency}: the fees"
                + (
                    f" and {row.peak - row.seats} extra seat(s) at the peak of {row.peak} users"
                    if row.peak and row.seats and row.peak > row.seats
                    else ""
                ),
                f"on {numbers}",
                row.expected,
                row.invoiced,
                first_invoice,
            )
        )
    for pk in row.overdue_ids:
        invoice = invoices[pk]
        unpaid = invoice.amount_due - invoice.amount_paid
        found.append(
            finding(
                Kind.OVERDUE_INVOICE,
                f"{who}: invoice {invoice.number} overdue since {invoice.due_at:%d %b %Y}",
                f"paid by {invoice.due_at:%d %b %Y}",
                f"open, {_money(unpaid, invoice.currency)} unpaid",
                invoice.amount_due,
                invoice.amount_paid,
                (Invoice, invoice.pk),
                invoice.external_id,
                since=invoice.due_at,
            )
        )
    return found


_STARTER_FIELDS = ("username", "first_name", "last_name")


def runs_with_starter(runs: QuerySet[ReconciliationRun]) -> QuerySet[ReconciliationRun]:
    """``runs`` with who started each (the person of its creation's history row), for
    ``run_started_by``: in the same query, whatever the number of runs."""
    created = ReconciliationRun.history.filter(id=OuterRef("pk"), history_type="+").order_by(
        "history_id"
    )
    return runs.annotate(
        **{
            f"_starter_{name}": Subquery(created.values(f"history_user__{name}")[:1])
            for name in _STARTER_FIELDS
        }
    )


def run_started_by(run: ReconciliationRun) -> str:
    """Who started ``run`` as pages name them (``kit.people.actor_name``): "Olga Nilsen",
    "task:reconciliation_run for Olga Nilsen", "task:reconciliation_run". ``run`` comes
    from ``runs_with_starter``."""
    username = getattr(run, "_starter_username", None)
    person = None
    if username is not None:
        person = get_user_model()(
            username=username,
            first_name=run._starter_first_name or "",
            last_name=run._starter_last_name or "",
        )
    return actor_name(run.started_by, person)


def _start(month: dt.date, customer: Customer | None) -> ReconciliationRun:
    """Register the run; refuse when another run of the month is alive. A run that has
    been silent for ``OPSDESK_RECONCILE_STALE_MINUTES`` died with its worker and is marked
    failed (the broker hands its task out again after its visibility timeout)."""
    from audit.context import current_actor

    minutes = settings.OPSDESK_RECONCILE_STALE_MINUTES
    stale_after = dt.timedelta(minutes=minutes)
    with transaction.atomic():
        stale = ReconciliationRun.objects.filter(
            month=month,
            status=ReconciliationRun.Status.RUNNING,
            started_at__lt=timezone.now() - stale_after,
        )
        update_with_history(
            stale,
            reason=f"no progress for {minutes} minutes: its worker died",
            status=ReconciliationRun.Status.FAILED,
            error="Stopped without finishing (worker lost).",
            finished_at=timezone.now(),
        )
    try:
        with transaction.atomic():
            return ReconciliationRun.objects.create(
                month=month,
                customer=customer,
                stage="comparing",
                progress=5,
                started_by=current_actor().label,
            )
    except IntegrityError:
        running = runs_with_starter(
            ReconciliationRun.objects.filter(month=month, status=ReconciliationRun.Status.RUNNING)
        ).first()
        started_by = run_started_by(running) if running is not None else "?"
        raise ReconciliationBusy(
            f"A reconciliation of {month:%Y-%m} is running (run #{getattr(running, 'pk', '?')}, "
            f"started by {started_by}); try again when it has finished."
        ) from None


def _step(run: ReconciliationRun, stage: str, progress: int, **counts) -> None:
    """Record progress where the run page sees it at once (outside the write)."""
    run.stage, run.progress = stage, progress
    for name, value in counts.items():
        setattr(run, name, value)
    run._change_reason = stage
    run.save(update_fields=["stage", "progress", *counts])


def reconciliation_run(
    *, month: dt.date, customer: Customer | None = None, today: dt.date | None = None
) -> ReconciliationRun:
    """Reconcile ``month`` for every customer (or one: "re-check now") and bring its
    findings up to date. Returns the finished run; raises ``ReconciliationBusy`` when a
    run of the month is in progress. A failure is recorded on the run and re-raised."""
    month = month_start(month)
    today = today or timezone.now().date()
    run = _start(month, customer)
    try:
        rows = billing_comparison(first=month, last=month, customer=customer, today=today)
        _step(run, "writing findings", 60, customers_checked=len(rows))
        with transaction.atomic():
            with connection.cursor() as cursor:  # one writer per month, whoever started it
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    [f"reconcile:{month:%Y-%m}"],
                )
            counts = _write_findings(run, rows, month=month, customer=customer, today=today)
        run.status = ReconciliationRun.Status.SUCCEEDED
        run.stage, run.progress = "done", 100
        run.findings = counts.pop("findings")
        for name, value in counts.items():
            setattr(run, name, value)
        run.finished_at = timezone.now()
        run._change_reason = "finished"
        run.save()
    except Exception as exc:
        run.status = ReconciliationRun.Status.FAILED
        run.error = f"{type(exc).__name__}: {exc}"[:2000]
        run.finished_at = timezone.now()
        run._change_reason = "failed"
        run.save(update_fields=["status", "error", "finished_at"])
        raise
    return run


def _clean(row: Comparison) -> bool:
    """Whether no rule can find anything in ``row``: a contract, one issued invoice in its
    currency for exactly the expected amount, none overdue. ``findings_for`` finds nothing
    for such a row, so its invoice and customer are not even looked up: most rows are
    clean, and loading them all took longer than the comparison (bench.reconcile)."""
    return (
        row.contract_id is not None
        and len(row.invoice_ids) == 1
        and row.currencies == [row.contract_currency]
        and row.invoiced == row.expected
        and not row.overdue_ids
    )


def _any_of(ids) -> RawSQL:
    """``ids`` for ``pk__in`` as one array parameter: queried even when empty, so a run
    makes as many queries whether or not it finds anything."""
    return RawSQL("SELECT unnest(%s::bigint[])", [sorted(ids)])


def _write_findings(run, rows, *, month, customer, today) -> dict:
    rows = [row for row in rows if not _clean(row)]
    invoice_ids = {pk for row in rows for pk in (*row.invoice_ids, *row.overdue_ids)}
    invoices = {
        invoice.pk: invoice for invoice in Invoice.objects.filter(pk__in=_any_of(invoice_ids))
    }
    customer_ids = {row.customer_id for row in rows if row.customer_id is not None}
    customers = {
        # An account from the CRM has no tenant id until its product tenant exists: its
        # findings are keyed by its CRM id meanwhile, never by an empty tenant id.
        pk: (name, tenant or f"crm-{crm_id}")
        for pk, name, tenant, crm_id in Customer.objects.filter(
            pk__in=_any_of(customer_ids)
        ).values_list("pk", "name", "external_id", "crm_id")
    }
    wanted = {f.key: f for row in rows for f in findings_for(row, invoices, customers, today)}

    scope = Q(kind__in=BILLING_KINDS, period=month)
    if customer is not None:
        scope &= Q(customer=customer)
    existing = {
        case.dedupe_key: case
        for case in Case.objects.select_for_update().filter(scope | Q(dedupe_key__in=wanted))
    }
    content_types = {
        model: ContentType.objects.get_for_model(model) for model in (Invoice, Contract)
    }
    now = timezone.now()
    new, again = [], {}
    for key, finding in wanted.items():
        values = {
            "summary": finding.summary[:300],
            "expected": finding.expected,
            "found": finding.found,
            "expected_amount": finding.expected_amount,
            "found_amount": finding.found_amount,
        }
        case = existing.get(key)
        if case is not None:
            again[case] = values
            continue
        subject_type, subject_id = None, ""
        if finding.subject is not None:
            subject_type = content_types[finding.subject[0]]
            subject_id = str(finding.subject[1])
        new.append(
            Case(
                kind=finding.kind,
                customer_id=finding.customer_id,
                period=finding.month,
                dedupe_key=key,
                subject_type=subject_type,
                subject_id=subject_id,
                details=finding.details,
                opened_at=now,
                **values,
            )
        )

    run_name = f"reconciliation run #{run.pk}"
    cases_open(cases=new, reason=f"found by {run_name}")
    updated, reopened = cases_raise_again(
        found=again,
        updated_reason=f"amounts updated by {run_name}",
        reopened_reason=f"found again by {run_name}",
    )
    fixed = [
        case.pk
        for key, case in existing.items()
        if key not in wanted and case.state in Case.OPEN_STATES and case.kind in BILLING_KINDS
    ]
    resolved = cases_close(
        cases=Case.objects.filter(pk__in=fixed),
        state=Case.State.RESOLVED,
        note=f"No longer found by {run_name} on {now:%d %b %Y %H:%M} UTC: fixed.",
        reason=f"no longer found by {run_name}",
    )
    return {
        "findings": dict(Counter(f.kind for f in wanted.values())),
        "opened": len(new) + reopened,
        "updated": updated,
        "resolved": resolved,
    }
