"""The home page's widgets (docs/product.md#home): one selector per widget, each a fixed
number of queries whatever the number of rows, each count with the address of the page
that lists exactly those rows (the triage queue's and the inbox's own filters, or a
changelist's).

Who sees which widget is the view's business (``opsdesk.home.views``); a selector reads
for the person it is given and assumes they may open what it links to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.urls import reverse

from billing.models import ReconciliationRun
from customers.models import Contract, Customer
from kit.admin import capped_count
from kit.months import add_months, month_start
from kit.text import capped_text
from onboarding.models import ChecklistTask
from opsdesk.health.flags import CustomerHealth, customer_health
from opsdesk.health.models import HealthSignal
from opsdesk.health.selectors import ManagerSignal, manager_open_signals, sweep_finished
from support.case_age import age_q, began_at
from support.cases import case_owners
from support.models import Case, InboundEmail, Ticket, WebhookEvent

OPEN, ACKNOWLEDGED = HealthSignal.State.OPEN, HealthSignal.State.ACKNOWLEDGED
# Renewals an account manager sees coming, in days (the digest's "renewal soon" is 30).
RENEWAL_HORIZON_DAYS = 60
# Onboarding tasks "due" on the home page: due from today to this many days ahead.
TASKS_DUE_DAYS = 7
# The exceptions' age buckets in days: 0-1, 1-3, 3-7, older (the inbox's age filters).
AGE_EDGES = (1, 3, 7)


# A count of rows that pile up with the data (failed events, cases) stops here, so the
# home never counts a whole table (``kit.admin.capped_count``).
TALLY_CAP = 999


@dataclass(frozen=True)
class Tally:
    """One count and the page that lists exactly its rows (``url`` empty: nothing to
    open, for a count of zero whose page would need the rows' ids)."""

    key: str
    label: str
    count: int  # above TALLY_CAP: "more than TALLY_CAP" (a capped count)
    url: str = ""
    tone: str = ""  # "danger", "warning" or "" (the admin theme's label variants)

    @property
    def figure(self) -> str:
        """The count as shown: "999+" once it passes the cap."""
        return capped_text(self.count, TALLY_CAP)


def _url(name: str, params: dict | None = None, *args) -> str:
    base = reverse(f"admin:{name}", args=args)
    return f"{base}?{urlencode(params)}" if params else base


def _ids(values) -> str:
    return ",".join(str(v) for v in sorted(set(values)))


# --- Support ---------------------------------------------------------------------------


def support_queue_tallies(*, user, now: dt.datetime) -> list[Tally]:
    """My open tickets, the unassigned ones, those about to breach and breached (the
    service levels' warning and deadline, ``support.ticket_sla.tickets_at_risk`` and
    ``tickets_breached``) and those waiting on the customer, each linked to the triage
    queue filtered to them. One query."""
    opened = Ticket.Status.OPEN
    counts = Ticket.objects.filter(status__in=Ticket.OPEN_STATES).aggregate(
        mine=Count("pk", filter=Q(assignee=user)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
        at_risk=Count("pk", filter=Q(status=opened, sla_warn_at__lte=now, sla_due_at__gt=now)),
        breached=Count("pk", filter=Q(status=opened, sla_due_at__lte=now)),
        waiting=Count("pk", filter=Q(status=Ticket.Status.PENDING)),
    )
    queue = "support_ticket_queue"
    return [
        Tally("mine", "My open tickets", counts["mine"], _url(queue, {"assignee": "me"})),
        Tally("unassigned", "Unassigned", counts["unassigned"], _url(queue, {"assignee": "none"})),
        Tally(
            "at_risk",
            "About to breach",
            counts["at_risk"],
            _url(queue, {"at_risk": "true"}),
            "warning" if counts["at_risk"] else "",
        ),
        Tally(
            "breached",
            "Breached",
            counts["breached"],
            _url(queue, {"overdue": "true"}),
            "danger" if counts["breached"] else "",
        ),
        Tally(
            "waiting",
            "Waiting on customer",
            counts["waiting"],
            _url(queue, {"status": Ticket.Status.PENDING}),
        ),
    ]


def failed_input_tallies(*, webhooks: bool = True, emails: bool = True) -> list[Tally]:
    """Product webhook events and inbound emails whose processing failed (retried by
    hand from their list), each linked to its list filtered to the failed ones. One
    query per kind asked for."""
    failed = WebhookEvent.Status.FAILED
    tallies = []
    for wanted, model, key, label in (
        (webhooks, WebhookEvent, "webhooks", "Failed webhook events"),
        (emails, InboundEmail, "emails", "Failed inbound emails"),
    ):
        if not wanted:
            continue
        count = capped_count(model.objects.filter(status=failed), TALLY_CAP)
        opts = model._meta
        tallies.append(
            Tally(
                key,
                label,
                count,
                _url(f"{opts.app_label}_{opts.model_name}_changelist", {"status__exact": failed}),
                "danger" if count else "",
            )
        )
    return tallies


# --- Account managers ------------------------------------------------------------------


@dataclass(frozen=True)
class Attention:
    """My customers needing attention today: once the day's sweep has run, their open
    signals (``signals``, each with its customer's page at ``#signals``; ``live`` False),
    else the digest's flags computed live (``customers``, flagged most first, as the
    digest lists them; ``live`` True)."""

    tally: Tally
    customers: list[tuple[CustomerHealth, str]] = field(default_factory=list)
    signals: list[tuple[ManagerSignal, str]] = field(default_factory=list)
    live: bool = True
    # The signals listed, and the signals' list of exactly them (``signals`` only).
    signal_tally: Tally | None = None


def customers_needing_attention(*, user, date: dt.date) -> Attention:
    """The customers ``user`` manages that need attention on ``date``.

    When the signals' sweep of ``date`` has finished: their open signals the digest of
    ``date`` shows (``opsdesk.health.selectors.manager_open_signals``: not resolved, not
    hidden by a snooze), new ones first; the count (of customers) links to the customer
    list of exactly them, ``signal_tally`` to the signals' list of exactly those signals
    (once the day is swept, a snoozed signal is one hidden: the sweep woke those whose
    date came, and a snooze ends after today). Two queries: the sweep's state, the
    signals.

    Before it (or when it failed): the digest's flags computed now with its rules
    (``opsdesk.health.flags.customer_health``), the count linking to the customer list's
    "Needs attention today" of them. Three queries: the sweep's state, the health (two).
    """
    label = "My customers needing attention today"
    if sweep_finished(date=date):
        shown = manager_open_signals(user=user, date=date)
        customers = {line.signal.customer_id for line in shown}
        url = _url("customers_customer_changelist", {"id__in": _ids(customers)})
        return Attention(
            tally=Tally(
                "attention",
                label,
                len(customers),
                url if customers else "",
                "warning" if customers else "",
            ),
            signals=[
                (line, _url("customers_customer_change", None, line.signal.customer_id))
                for line in shown
            ],
            live=False,
            signal_tally=Tally(
                "attention-signals",
                "My customers' open signals",
                len(shown),
                _url(
                    "opsdesk_healthsignal_changelist",
                    {"manager": "me", "state__in": f"{OPEN},{ACKNOWLEDGED}"},
                ),
            ),
        )
    mine = Customer.objects.filter(account_manager=user).values("pk")
    health = customer_health(date=date, customer_ids=mine)
    flagged = sorted(
        (h for h in health if h.needs_attention), key=lambda h: (-len(h.flags), h.name)
    )
    url = _url(
        "customers_customer_changelist",
        {"account_manager__id__exact": user.pk, "attention": "today"},
    )
    return Attention(
        tally=Tally("attention", label, len(flagged), url, "warning" if flagged else ""),
        customers=[(h, _url("customers_customer_change", None, h.customer_id)) for h in flagged],
    )


@dataclass(frozen=True)
class Renewals:
    tally: Tally
    contracts: list[Contract] = field(default_factory=list)


def renewals_coming(*, user, today: dt.date) -> Renewals:
    """The active contracts of ``user``'s customers that end within
    ``RENEWAL_HORIZON_DAYS`` of ``today`` (that day included), soonest first, with
    their customer. One query."""
    until = today + dt.timedelta(days=RENEWAL_HORIZON_DAYS)
    contracts = list(
        Contract.objects.filter(
            customer__account_manager=user,
            status=Contract.Status.ACTIVE,
            end_date__gte=today,
            end_date__lte=until,
        )
        .select_related("customer")
        .order_by("end_date", "customer__name", "pk")
    )
    url = ""
    if contracts:
        url = _url(
            "customers_contract_changelist",
            {
                "status__exact": Contract.Status.ACTIVE,
                "end_date__gte": today.isoformat(),
                "end_date__lte": until.isoformat(),
                "customer__in": _ids(c.customer_id for c in contracts),
            },
        )
    label = f"Renewals in the next {RENEWAL_HORIZON_DAYS} days"
    return Renewals(Tally("renewals", label, len(contracts), url), contracts)


def onboarding_tallies(*, user, today: dt.date) -> list[Tally]:
    """The open onboarding tasks of ``user``'s customers' active contracts, whoever
    owns them (the digest reminds the manager of the overdue ones,
    ``onboarding.selectors.overdue_tasks_for_manager``): overdue, and due within
    ``TASKS_DUE_DAYS``. One query."""
    soon = today + dt.timedelta(days=TASKS_DUE_DAYS)
    rows = list(
        ChecklistTask.objects.filter(
            state=ChecklistTask.State.OPEN,
            due_date__lt=soon,
            checklist__customer__account_manager=user,
            checklist__contract__status=Contract.Status.ACTIVE,
        )
        .values("checklist_id")
        .annotate(
            overdue=Count("pk", filter=Q(due_date__lt=today)),
            due=Count("pk", filter=Q(due_date__gte=today)),
        )
        .order_by("checklist_id")
    )
    tallies = []
    for key, label, dates, tone in (
        ("overdue", "Onboarding tasks overdue", {"due_date__lt": today}, "danger"),
        (
            "due",
            f"Onboarding tasks due within {TASKS_DUE_DAYS} days",
            {"due_date__gte": today, "due_date__lt": soon},
            "",
        ),
    ):
        checklists = [row["checklist_id"] for row in rows if row[key]]
        count = sum(row[key] for row in rows)
        url = ""
        if checklists:
            params = {"state__exact": ChecklistTask.State.OPEN}
            params.update((name, day.isoformat()) for name, day in dates.items())
            params["checklist__in"] = _ids(checklists)
            url = _url("onboarding_checklisttask_changelist", params)
        tallies.append(Tally(f"tasks_{key}", label, count, url, tone if count else ""))
    return tallies


def my_customers_cases_tally(*, user) -> Tally:
    """Open and acknowledged cases of ``user``'s customers, linked to the inbox filtered
    to them. One query."""
    count = capped_count(
        Case.objects.filter(state__in=Case.OPEN_STATES, customer__account_manager=user), TALLY_CAP
    )
    return Tally(
        "cases", "Open cases of my customers", count, _url("support_case_inbox", {"managed": "me"})
    )


# --- Ops leads -------------------------------------------------------------------------


@dataclass(frozen=True)
class KindAges:
    """One kind of open case: its count per age bucket and in all, and the oldest."""

    kind: str
    label: str
    total: Tally
    buckets: list[Tally]
    oldest: Case | None


# (label, older than N days, younger than N days): the inbox's ``age`` and ``younger``.
AGE_BUCKETS = (
    ("0-1 days", None, AGE_EDGES[0]),
    ("1-3 days", AGE_EDGES[0], AGE_EDGES[1]),
    ("3-7 days", AGE_EDGES[1], AGE_EDGES[2]),
    ("Older", AGE_EDGES[2], None),
)


def _bucket_q(older: int | None, younger: int | None, now: dt.datetime) -> Q:
    # Aged as the inbox ages them, from when the problem began (support.case_age).
    return age_q(now=now, older_than=older, younger_than=younger)


def _bucket_params(older: int | None, younger: int | None) -> dict:
    params = {}
    if older is not None:
        params["age"] = older
    if younger is not None:
        params["younger"] = younger
    return params


def exceptions_by_age(*, now: dt.datetime) -> list[KindAges]:
    """Open and acknowledged cases per kind (in the kinds' order, only kinds with some)
    and age bucket (``AGE_BUCKETS``), each count linked to the inbox filtered to it, with
    the oldest case of each kind; a last row "All kinds". Two queries."""
    buckets = {
        f"b{i}": Count("pk", filter=_bucket_q(older, younger, now))
        for i, (_, older, younger) in enumerate(AGE_BUCKETS)
    }
    open_cases = Case.objects.filter(state__in=Case.OPEN_STATES)
    counts = {
        row["kind"]: row
        for row in open_cases.values("kind").annotate(n=Count("pk"), **buckets).order_by("kind")
    }
    oldest = {
        case.kind: case
        for case in open_cases.filter(kind__in=list(counts))
        .select_related("customer")
        .order_by("kind", began_at(), "pk")
        .distinct("kind")
    }
    inbox = "support_case_inbox"

    def row(kind: str, label: str, counted: dict, kind_params: dict) -> KindAges:
        return KindAges(
            kind=kind,
            label=label,
            total=Tally(f"{kind}-all", f"{label}: all", counted["n"], _url(inbox, kind_params)),
            buckets=[
                Tally(
                    f"{kind}-{i}",
                    f"{label}: {bucket_label}",
                    counted[f"b{i}"],
                    _url(inbox, {**kind_params, **_bucket_params(older, younger)}),
                    "danger" if older == AGE_EDGES[-1] and counted[f"b{i}"] else "",
                )
                for i, (bucket_label, older, younger) in enumerate(AGE_BUCKETS)
            ],
            oldest=oldest.get(kind),
        )

    rows = [
        row(kind, label, counts[kind], {"kind": kind})
        for kind, label in Case.Kind.choices
        if kind in counts
    ]
    if rows:
        summed = {name: sum(counts[r.kind][name] for r in rows) for name in ("n", *buckets)}
        rows.append(row("all", "All kinds", summed, {}))
    return rows


@dataclass(frozen=True)
class MonthReconciliation:
    """One month's reconciliation: its latest whole-month run (None: not run yet) and its
    open findings, linked to the inbox filtered to that month."""

    month: dt.date
    run: ReconciliationRun | None
    run_url: str
    findings: Tally


def reconciliation_months(*, today: dt.date) -> list[MonthReconciliation]:
    """This month's and last month's reconciliation, this month first. Two queries."""
    months = [month_start(today), add_months(month_start(today), -1)]
    runs = {
        run.month: run
        for run in ReconciliationRun.objects.filter(month__in=months, customer__isnull=True)
        .order_by("month", "-started_at", "-pk")
        .distinct("month")
    }
    findings = dict(
        Case.objects.filter(period__in=months, state__in=Case.OPEN_STATES)
        .values("period")
        .annotate(n=Count("pk"))
        .values_list("period", "n")
        .order_by("period")
    )
    result = []
    for month in months:
        run = runs.get(month)
        count = findings.get(month, 0)
        result.append(
            MonthReconciliation(
                month=month,
                run=run,
                run_url=_url("billing_reconciliationrun_change", None, run.pk) if run else "",
                findings=Tally(
                    f"findings-{month:%Y-%m}",
                    f"Open findings of {month:%B %Y}",
                    count,
                    _url("support_case_inbox", {"month": f"{month:%Y-%m}"}),
                    "warning" if count else "",
                ),
            )
        )
    return result


@dataclass(frozen=True)
class OwnerWork:
    """One person's open work (or nobody's: ``name`` "Nobody"), each count linked to the
    queue or the inbox filtered to them when that page can filter by them."""

    name: str
    tickets: Tally
    cases: Tally


def _person(row: dict, prefix: str) -> str:
    full = f"{row[prefix + '__first_name']} {row[prefix + '__last_name']}".strip()
    return full or row[prefix + "__username"]


def work_per_owner() -> list[OwnerWork]:
    """Open and waiting tickets per assignee and open and acknowledged cases per owner,
    busiest first, nobody's last. A count links to the queue (``assignee``) or the
    inbox (``owner``) filtered to that person; a person those filters do not offer (no
    longer active or staff, or no longer allowed to own cases) is shown without a link.
    Three queries."""
    names = ("__username", "__first_name", "__last_name", "__is_active", "__is_staff")
    tickets = (
        Ticket.objects.filter(status__in=Ticket.OPEN_STATES)
        .values("assignee_id", *(f"assignee{n}" for n in names))
        .annotate(n=Count("pk"))
        .order_by()
    )
    cases = (
        Case.objects.filter(state__in=Case.OPEN_STATES)
        .values("owner_id", *(f"owner{n}" for n in names))
        .annotate(n=Count("pk"))
        .order_by()
    )
    owners = set(case_owners().values_list("pk", flat=True))
    people: dict[int | None, dict] = {}
    for row in tickets:
        pk = row["assignee_id"]
        entry = people.setdefault(pk, {"tickets": 0, "cases": 0})
        entry["tickets"] = row["n"]
        if pk is not None:
            entry["name"] = _person(row, "assignee")
            entry["assignable"] = row["assignee__is_active"] and row["assignee__is_staff"]
    for row in cases:
        pk = row["owner_id"]
        entry = people.setdefault(pk, {"tickets": 0, "cases": 0})
        entry["cases"] = row["n"]
        if pk is not None:
            entry["name"] = _person(row, "owner")
            entry.setdefault("assignable", row["owner__is_active"] and row["owner__is_staff"])
    queue, inbox = "support_ticket_queue", "support_case_inbox"
    result = []
    for pk, entry in people.items():
        param = "none" if pk is None else str(pk)
        key = "nobody" if pk is None else f"user-{pk}"
        ticket_url = _url(queue, {"assignee": param}) if pk is None or entry["assignable"] else ""
        case_url = _url(inbox, {"owner": param}) if pk is None or pk in owners else ""
        result.append(
            OwnerWork(
                name="Nobody" if pk is None else entry["name"],
                tickets=Tally(f"{key}-tickets", "Open tickets", entry["tickets"], ticket_url),
                cases=Tally(f"{key}-cases", "Open cases", entry["cases"], case_url),
            )
        )
    result.sort(key=lambda w: (w.name == "Nobody", -(w.tickets.count + w.cases.count), w.name))
    return result
