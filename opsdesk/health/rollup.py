"""The weekly team roll-up (docs/product.md#team-roll-up): a team lead's view of the open
health signals across the team's account managers.

- **Teams** are groups whose name starts with ``OPSDESK_TEAM_GROUP_PREFIX`` ("Team North").
  A team covers the followed customers whose account manager is one of its members; its
  **leads** are its active members who are also ops leads (``kit.roles.OPS_LEADS``), and
  each lead gets the team's roll-up. A team without a lead sends it to
  ``OPSDESK_ROLLUP_FALLBACK_EMAIL``, so no team's figures go unread.
- **The rest**: the followed customers no team covers (no manager, or a manager in no team)
  have one roll-up to ``OPSDESK_ROLLUP_FALLBACK_EMAIL``. While no team group exists that is
  every customer: one roll-up across all managers.
- ``rollup_build`` renders a team's roll-up in a fixed number of queries;
  ``rollup_send`` claims a ``DigestDelivery`` row as the digest does, keyed
  ``rollup:<group id>:<user id>``, ``rollup:<group id>:fallback`` or ``rollup:fallback``
  (its ``kind`` and ``team`` say in the delivery log what it is), so a re-run, a retry or a
  second scheduler never sends a second email.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.template.loader import render_to_string
from django.urls import reverse

from customers.models import Contract, Customer
from kit.params import pk_or_none
from kit.people import person_name
from kit.roles import OPS_LEADS
from kit.text import count_of, one_line
from opsdesk.health.digest import DigestError, Email, Recipient, claimed_send, customer_url
from opsdesk.health.flags import KINDS
from opsdesk.health.models import HealthSignal
from opsdesk.models import DigestDelivery

ROLLUP_PREFIX = "rollup:"
ROLLUP_FALLBACK_KEY = "rollup:fallback"
# The oldest unhandled signals listed (the count of all of them is shown too).
OLDEST_LISTED = 10
# The kinds that are about a renewal; a customer with one of them open and any other open
# signal is a renewal at risk.
RENEWAL_KINDS = ("renewal_soon", "renewal_at_risk")
UNASSIGNED = "Unassigned"


@dataclass(frozen=True)
class Team:
    name: str
    # None: the followed customers no team covers.
    group_id: int | None


@dataclass(frozen=True)
class ManagerRow:
    """One account manager's line of the table (``manager_id`` None: "Unassigned")."""

    name: str
    manager_id: int | None
    customers: int
    counts: list[int]  # per column of ``Rollup.kinds``
    total: int
    unhandled: int
    url: str  # the signal list of this row, "" when the list cannot filter it
    by_kind: list[tuple[str, int]]  # (label, count) of the kinds it has open


@dataclass(frozen=True)
class SignalLine:
    customer: str
    customer_url: str
    manager: str
    label: str
    age: int  # days open on the roll-up's date
    url: str  # the signal's page


@dataclass(frozen=True)
class CustomerLine:
    customer: str
    customer_url: str
    manager: str
    labels: list[str]  # long-open: the kinds open too long; renewals: the other kinds
    age: int = 0  # long-open: the oldest signal's days open
    renewal: str = ""  # renewals: the renewal kinds' labels
    contract_end: dt.date | None = None


@dataclass(frozen=True)
class Rollup:
    date: dt.date
    team: Team
    kinds: list[tuple[str, str, str]]  # (code, label, signal list URL), the table's columns
    managers: list[ManagerRow]
    column_totals: list[int]
    total: int  # open signals (any state but resolved)
    unhandled: int  # open and not acknowledged
    customers: int  # followed customers the team covers
    customers_open: int  # of them, with an open signal
    oldest: list[SignalLine]
    stale: list[CustomerLine]
    renewals: list[CustomerLine]
    subject: str
    text: str = field(repr=False)
    html: str = field(repr=False)


# --- Teams and recipients ----------------------------------------------------------------


def _team_groups() -> QuerySet[Group]:
    return Group.objects.filter(name__startswith=settings.OPSDESK_TEAM_GROUP_PREFIX)


def _rest(*, teams_exist: bool) -> Team:
    return Team("All account managers" if not teams_exist else "Customers of no team", None)


def _fallback(key: str) -> Recipient:
    return Recipient(key, settings.OPSDESK_ROLLUP_FALLBACK_EMAIL, "Account management", None)


def team_customers(team: Team) -> QuerySet[Customer]:
    """The followed (not churned) customers ``team`` covers (a query of its own only when
    evaluated)."""
    followed = Customer.objects.exclude(status=Customer.Status.CHURNED)
    if team.group_id is not None:
        return followed.filter(account_manager__groups=team.group_id)
    return followed.exclude(
        account_manager__groups__name__startswith=settings.OPSDESK_TEAM_GROUP_PREFIX
    )


def rollup_recipients() -> list[tuple[Team, Recipient]]:
    """Every roll-up to send: each team's leads (or the fallback address for a team
    without one), then the fallback address for the customers of no team, when any."""
    user_model = get_user_model()
    leads = user_model.objects.filter(
        is_active=True, pk__in=Group.objects.filter(name=OPS_LEADS).values("user")
    ).order_by("username")
    groups = (
        _team_groups()
        .order_by("name")
        .prefetch_related(Prefetch("user_set", queryset=leads, to_attr="leads"))
    )
    pairs: list[tuple[Team, Recipient]] = []
    for group in groups:
        team = Team(group.name, group.pk)
        if not group.leads:
            pairs.append((team, _fallback(f"{ROLLUP_PREFIX}{group.pk}:fallback")))
        for user in group.leads:
            key = f"{ROLLUP_PREFIX}{group.pk}:{user.pk}"
            pairs.append((team, Recipient(key, user.email, person_name(user), user.pk)))
    rest = _rest(teams_exist=bool(groups))
    if team_customers(rest).exists():
        pairs.append((rest, _fallback(ROLLUP_FALLBACK_KEY)))
    return pairs


def rollup_for(key: str) -> tuple[Team, Recipient]:
    """The team and recipient behind a delivery key (``rollup_recipients``' keys)."""
    if key == ROLLUP_FALLBACK_KEY:
        return _rest(teams_exist=_team_groups().exists()), _fallback(key)
    raw_group, _, who = key.removeprefix(ROLLUP_PREFIX).partition(":")
    group_id = pk_or_none(Group, raw_group)
    group = _team_groups().filter(pk=group_id).first() if group_id is not None else None
    if not key.startswith(ROLLUP_PREFIX) or group is None:
        raise DigestError(f"No team roll-up {key!r}.")
    team = Team(group.name, group.pk)
    if who == "fallback":
        return team, _fallback(key)
    user_model = get_user_model()
    user_id = pk_or_none(user_model, who)
    user = user_model.objects.filter(pk=user_id).first() if user_id is not None else None
    if user is None:
        raise DigestError(f"No team lead {key!r}.")
    return team, Recipient(key, user.email, person_name(user), user.pk)


# --- The roll-up -------------------------------------------------------------------------


def signal_list_url(**filters: str) -> str:
    """The signals' admin list with the list's own filters (``admin_signals``)."""
    path = reverse("admin:opsdesk_healthsignal_changelist")
    return f"{settings.OPSDESK_BASE_URL}{path}?{urlencode(filters)}"


def _signal_url(pk: int) -> str:
    path = reverse("admin:opsdesk_healthsignal_change", args=[pk])
    return f"{settings.OPSDESK_BASE_URL}{path}"


def _kind_order(code: str, label: str) -> tuple[int, str]:
    order = list(KINDS)
    return (order.index(code), "") if code in KINDS else (len(order), label.lower())


def _subject(day: str, team: Team, *, total: int, unhandled: int) -> str:
    name = one_line(team.name)  # a group's name in a header: one line
    if not total:
        return f"Team roll-up {day}, {name}: no open signals"
    return f"Team roll-up {day}, {name}: {count_of(total, 'open signal')} ({unhandled:,} unhandled)"


def rollup_build(*, date: dt.date, team: Team) -> Rollup:
    """``team``'s roll-up of ``date``: its open signals (any state but resolved, opened on
    or before ``date``) by manager and kind, the oldest unhandled (open, not acknowledged),
    the customers with a signal open more than ``OPSDESK_ROLLUP_STALE_DAYS`` days, and the
    renewals at risk. Reads the stored signals as they are: three queries, whatever the
    number of customers and signals."""
    customers = team_customers(team)
    active = Contract.objects.filter(
        customer=OuterRef("customer_id"), status=Contract.Status.ACTIVE, end_date__gte=date
    )
    signals = list(
        HealthSignal.objects.exclude(state=HealthSignal.State.RESOLVED)
        .filter(customer__in=customers, opened_on__lte=date)
        .select_related("customer", "customer__account_manager")
        .annotate(
            contract_end=Subquery(active.order_by("end_date").values("end_date")[:1]),
        )
        .order_by("opened_on", "customer__name", "customer_id", "kind")
    )
    covered = dict(
        customers.order_by()
        .values("account_manager_id")
        .annotate(n=Count("pk"))
        .values_list("account_manager_id", "n")
    )
    people = {
        user.pk: user
        for user in get_user_model().objects.filter(
            pk__in=customers.order_by().values("account_manager_id")
        )
    }
    for signal in signals:  # a manager given a customer since the count: still listed
        manager = signal.customer.account_manager
        covered.setdefault(signal.customer.account_manager_id, 0)
        if manager is not None:
            people.setdefault(manager.pk, manager)

    def manager_name(manager_id: int | None) -> str:
        return person_name(people.get(manager_id)) if manager_id is not None else UNASSIGNED

    def unhandled(signal: HealthSignal) -> bool:
        return signal.state == HealthSignal.State.OPEN and signal.acknowledged_at is None

    def age(signal: HealthSignal) -> int:
        return (date - signal.opened_on).days

    labels = {s.kind: s.label for s in reversed(signals)}  # the newest label of each kind
    codes = sorted(labels, key=lambda code: _kind_order(code, labels[code]))
    kinds = [(code, labels[code], signal_list_url(open="yes", kind__exact=code)) for code in codes]
    cells: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    waiting_of: dict[int | None, int] = defaultdict(int)
    for signal in signals:
        cells[signal.customer.account_manager_id][signal.kind] += 1
        waiting_of[signal.customer.account_manager_id] += unhandled(signal)
    managers = sorted(
        (
            ManagerRow(
                name=manager_name(manager_id),
                manager_id=manager_id,
                customers=count,
                counts=[cells[manager_id][code] for code in codes],
                total=sum(cells[manager_id].values()),
                unhandled=waiting_of[manager_id],
                url=signal_list_url(open="yes", manager="none") if manager_id is None else "",
                by_kind=[
                    (labels[code], cells[manager_id][code])
                    for code in codes
                    if cells[manager_id][code]
                ],
            )
            for manager_id, count in covered.items()
        ),
        key=lambda row: (row.manager_id is None, row.name.lower(), row.manager_id or 0),
    )

    waiting = [s for s in signals if unhandled(s)]  # already oldest first
    oldest = [
        SignalLine(
            customer=s.customer.name,
            customer_url=customer_url(s.customer_id),
            manager=manager_name(s.customer.account_manager_id),
            label=s.label,
            age=age(s),
            url=_signal_url(s.pk),
        )
        for s in waiting[:OLDEST_LISTED]
    ]

    by_customer: dict[int, list[HealthSignal]] = defaultdict(list)
    for signal in signals:
        by_customer[signal.customer_id].append(signal)

    def line(own: list[HealthSignal], **fields) -> CustomerLine:
        customer = own[0].customer
        return CustomerLine(
            customer=customer.name,
            customer_url=customer_url(customer.pk),
            manager=manager_name(customer.account_manager_id),
            **fields,
        )

    stale_days = settings.OPSDESK_ROLLUP_STALE_DAYS
    stale = sorted(
        (
            line(own, labels=[s.label for s in own if age(s) > stale_days], age=age(own[0]))
            for own in by_customer.values()
            if age(own[0]) > stale_days
        ),
        key=lambda c: (-c.age, c.customer.lower(), c.customer_url),
    )
    renewals = []
    for own in by_customer.values():
        renewal = [s for s in own if s.kind in RENEWAL_KINDS]
        others = [s for s in own if s.kind not in RENEWAL_KINDS]
        if renewal and others:
            renewals.append(
                line(
                    own,
                    labels=sorted((s.label for s in others), key=str.lower),
                    renewal=", ".join(s.label for s in sorted(renewal, key=lambda s: s.kind)),
                    contract_end=own[0].contract_end,
                )
            )
    renewals.sort(key=lambda c: (c.contract_end is None, c.contract_end, c.customer.lower()))

    total, unhandled_total = len(signals), len(waiting)
    day = f"{date:%a} {date.day} {date:%b %Y}"
    subject = _subject(day, team, total=total, unhandled=unhandled_total)
    column_totals = [sum(row.counts[i] for row in managers) for i in range(len(codes))]
    context = {
        "date": date,
        "day": day,
        "team": team,
        "subject": subject,
        "kinds": kinds,
        "managers": managers,
        "column_totals": column_totals,
        "total": total,
        "unhandled": unhandled_total,
        "customers": sum(covered.values()),
        "customers_open": len(by_customer),
        "oldest": oldest,
        "stale": stale,
        "stale_days": stale_days,
        "renewals": renewals,
        "open_url": signal_list_url(open="yes"),
        "unhandled_url": signal_list_url(state__exact=HealthSignal.State.OPEN),
        "base_url": settings.OPSDESK_BASE_URL,
    }
    return Rollup(
        date=date,
        team=team,
        kinds=kinds,
        managers=managers,
        column_totals=column_totals,
        total=total,
        unhandled=unhandled_total,
        customers=context["customers"],
        customers_open=len(by_customer),
        oldest=oldest,
        stale=stale,
        renewals=renewals,
        subject=subject,
        # Plain text, not a SafeString: names in it come from outside (the digest's rule).
        text=str.__str__(render_to_string("opsdesk/digest/rollup.txt", context)),
        html=render_to_string("opsdesk/digest/rollup.html", context),
    )


def rollup_send(*, date: dt.date, team: Team, recipient: Recipient) -> bool:
    """Send ``team``'s roll-up of ``date`` to ``recipient`` unless it was sent (or is being
    sent): True when this call sent it. Claimed like the digest (one ``DigestDelivery`` per
    date and key); a failure is recorded on the delivery and raised."""

    def build() -> Email:
        rollup = rollup_build(date=date, team=team)
        return Email(
            subject=rollup.subject,
            text=rollup.text,
            html=rollup.html,
            message_id=f"<{recipient.key.replace(':', '-')}-{date}@opsdesk>",
            # In the log's columns: the customers the team covers, those with a signal.
            customers=rollup.customers,
            attention=rollup.customers_open,
        )

    return claimed_send(
        date=date,
        recipient=recipient,
        build=build,
        kind=DigestDelivery.Kind.ROLLUP,
        team=team.name,
    )
