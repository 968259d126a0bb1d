"""``manage.py seed_demo`` (docs/operations.md): deterministic, idempotent demo data."""

import datetime as dt
import re
import statistics
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import RequestFactory

from billing.models import Invoice, ReconciliationRun
from customers.models import Contact, Contract, Customer, Entitlement, Order, Product, UsageDaily
from kit import roles
from kit.months import month_end
from opsdesk.demo import catalogue
from opsdesk.demo.plan_shapes import tenant_key
from support.models import Case, Tag, Ticket, WebhookEvent

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=dt.UTC)
TODAY = NOW.date()
YESTERDAY = TODAY - dt.timedelta(days=1)
SMALL = ("--customers=12", "--days=30")
# django-axes checks every sign-in against its lockouts, so it needs the request.
SIGN_IN = RequestFactory().post("/admin/login/")
AUDITED = [
    Customer, Contact, Contract, Product, Order, Entitlement, UsageDaily,
    Invoice, Tag, WebhookEvent, Ticket, Case,
]  # fmt: skip


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs a good part of a second per hash; these tests hash on every run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The demo puts its staff in the roles' groups; a transactional test run before
    # these flushes them (roles_sync is idempotent).
    roles.roles_sync()


@pytest.fixture
def debug(settings):
    settings.DEBUG = True


def seed(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def row_counts() -> dict[str, int]:
    """Every table Django knows, history and m2m tables included."""
    return {
        model._meta.label: model._base_manager.count()
        for model in apps.get_models(include_auto_created=True)
    }


def snapshot() -> dict[str, list]:
    return {
        "customers": list(
            Customer.objects.order_by("external_id").values_list(
                "external_id", "name", "crm_id", "status", "account_manager__username"
            )
        ),
        "contacts": list(
            Contact.objects.order_by("customer__external_id", "email").values_list(
                "customer__external_id", "name", "email", "role", "is_primary"
            )
        ),
        "contracts": list(
            Contract.objects.order_by("customer__external_id", "start_date").values_list(
                "customer__external_id",
                "plan",
                "seats",
                "monthly_fee",
                "currency",
                "start_date",
                "end_date",
                "status",
                "integrations",
            )
        ),
        "orders": list(
            Order.objects.order_by("external_id").values_list(
                "external_id", "tenant_id", "sku", "quantity", "amount", "paid_at", "fulfilment"
            )
        ),
        "entitlements": list(
            Entitlement.objects.order_by("code").values_list(
                "code", "order__external_id", "state", "assignee_email", "valid_until"
            )
        ),
        "usage": list(
            UsageDaily.objects.order_by("customer__external_id", "date").values_list(
                "customer__external_id",
                "date",
                "active_users_1d",
                "active_users_7d",
                "last_login_at",
                "requests",
                "errors",
            )
        ),
        "invoices": list(
            Invoice.objects.order_by("external_id").values_list(
                "external_id", "number", "status", "amount_due", "period_start"
            )
        ),
        "tickets": list(
            Ticket.objects.order_by("customer__external_id", "subject").values_list(
                "customer__external_id",
                "subject",
                "priority",
                "status",
                "created_at",
                "first_response_due_at",
                "first_responded_at",
            )
        ),
        "cases": list(Case.objects.order_by("dedupe_key").values_list("dedupe_key", "state")),
        "events": list(WebhookEvent.objects.order_by("webhook_id").values_list("webhook_id")),
    }


class _Rollback(Exception):
    pass


def snapshot_of_a_run(*args: str) -> dict[str, list]:
    """Seed, look, and roll back: lets one test compare independent runs."""
    try:
        with transaction.atomic():
            seed(*args)
            taken = snapshot()
            raise _Rollback
    except _Rollback:
        pass
    assert not Customer.objects.exists()
    return taken


def customer_with(story: str) -> Customer:
    index = next(i for i, s in catalogue.FIXED_STORIES.items() if s == story)
    key = tenant_key(seed=catalogue.DEFAULT_SEED, index=index)
    return Customer.objects.get(external_id__endswith=f"-{key:06x}")


def usage_on(customer: Customer, day: dt.date) -> UsageDaily | None:
    return customer.usage.filter(date=day).first()


# --- Running it -------------------------------------------------------------------------


def test_it_refuses_to_run_with_debug_off_and_creates_nothing(settings):
    settings.DEBUG = False
    before = row_counts()
    with pytest.raises(CommandError, match=r"refuses to run with DEBUG off.*pass --force"):
        seed(*SMALL)
    assert row_counts() == before
    assert not User.objects.exists()


def test_it_runs_with_debug_off_when_forced(settings):
    settings.DEBUG = False
    seed(*SMALL, "--force")
    assert Customer.objects.count() == 12


def test_it_prints_a_one_line_summary_and_progress_per_chunk(debug):
    out, err = seed(*SMALL)
    assert out.count("\n") == 1
    # Pinned: a change to these numbers is a change to the demo data set.
    assert re.fullmatch(
        r"seed_demo \(seed 7, 12 customers, 30 days\): created 798 rows: 6 users, 6 tags, "
        r"7 products, 12 customers, 37 contacts, 26 contracts, 25 orders, 72 entitlements, "
        r"359 usage rows, 130 invoices, 5 webhook events, 38 tickets, 34 ticket tags, "
        r"8 cases, 2 checklist templates, 10 template items, 3 checklists, "
        r"18 checklist tasks in \d+\.\ds\n",
        out,
    ), out
    assert re.fullmatch(r"seed_demo: customers 1-12 of 12, \d+ rows created, \d+\.\ds\n", err)


def test_the_summary_counts_are_the_rows_created(debug):
    before = row_counts()
    out, _ = seed(*SMALL)
    after = row_counts()
    created = {label: after[label] - before[label] for label in after}
    counts = out.split("rows: ", 1)[1]
    summary = {
        name: int(count) for count, name in re.findall(r"(\d+) ([a-z ]+?)(?:,| in )", counts)
    }
    assert summary == {
        "users": created["auth.User"],
        "tags": created["support.Tag"],
        "products": created["customers.Product"],
        "customers": created["customers.Customer"],
        "contacts": created["customers.Contact"],
        "contracts": created["customers.Contract"],
        "orders": created["customers.Order"],
        "entitlements": created["customers.Entitlement"],
        "usage rows": created["customers.UsageDaily"],
        "invoices": created["billing.Invoice"],
        "webhook events": created["support.WebhookEvent"],
        "tickets": created["support.Ticket"],
        "ticket tags": created["support.Ticket_tags"],
        "cases": created["support.Case"],
        "checklist templates": created["onboarding.ChecklistTemplate"],
        "template items": created["onboarding.TemplateItem"],
        "checklists": created["onboarding.Checklist"],
        "checklist tasks": created["onboarding.ChecklistTask"],
    }


def test_it_rejects_a_negative_number_of_customers(debug):
    with pytest.raises(CommandError, match="must be at least 0"):
        seed("--customers=-1")
    with pytest.raises(CommandError, match="must be at least 1"):
        seed("--days=0")


def test_it_is_idempotent(debug):
    seed(*SMALL)
    before = row_counts()
    out, _ = seed(*SMALL)
    assert row_counts() == before
    assert "created 0 rows" in out


def test_it_fills_in_only_what_is_missing(debug):
    seed(*SMALL)
    yesterday_row = customer_with(catalogue.Story.USAGE_DROP).usage.get(date=YESTERDAY)
    yesterday_row.delete()  # leaves a "-" history row, as any delete does
    before = row_counts()
    out, _ = seed(*SMALL)
    after = row_counts()
    assert after["customers.UsageDaily"] == before["customers.UsageDaily"] + 1
    assert after["customers.HistoricalUsageDaily"] == before["customers.HistoricalUsageDaily"] + 1
    assert "created 1 rows" in out
    assert "1 usage rows" in out


def test_every_row_has_one_creation_history_row_and_no_deletion(debug):
    # When and by whom: tests/opsdesk/demo/test_demo_history.py.
    seed(*SMALL)
    for model in AUDITED:
        ids = set(model.objects.values_list("pk", flat=True))
        history = model.history.model.objects
        assert ids, model._meta.label
        assert set(history.values_list("id", flat=True)) == ids, model._meta.label
        assert history.filter(history_type="+").count() == len(ids), model._meta.label
        assert not history.filter(history_type="-").exists(), model._meta.label


def test_ticket_tags_are_in_the_tickets_creation_history_row(debug):
    seed(*SMALL)
    links = set(Ticket.tags.through.objects.values_list("ticket_id", "tag__name"))
    assert links
    recorded = set()
    for record in Ticket.history.model.objects.all():
        for link in record.tags.all():
            recorded.add((link.ticket_id, link.tag.name))
    assert recorded == links


# --- Determinism --------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_data(debug):
    first = snapshot_of_a_run(*SMALL)
    second = snapshot_of_a_run(*SMALL)
    assert first == second
    # Pinned: the data must not depend on the process (hash seeds, dict order, ...).
    assert ("cinder-energy-5b2a2c", "Cinder Energy GmbH") in {row[:2] for row in first["customers"]}


def test_another_seed_gives_other_data(debug):
    seven = snapshot_of_a_run(*SMALL)
    eight = snapshot_of_a_run(*SMALL, "--seed=8")
    assert not {row[0] for row in seven["customers"]} & {row[0] for row in eight["customers"]}
    assert not {row[0] for row in seven["entitlements"]} & {row[0] for row in eight["entitlements"]}


def test_more_customers_is_a_superset_of_fewer(debug):
    twelve = snapshot_of_a_run(*SMALL)
    fifteen = snapshot_of_a_run("--customers=15", "--days=30")
    for kind in ("customers", "contacts", "contracts", "orders", "entitlements", "usage"):
        assert all(row in fifteen[kind] for row in twelve[kind]), kind
        assert len(fifteen[kind]) > len(twelve[kind]), kind
    assert len(fifteen["customers"]) == 15


def test_more_days_changes_nothing_but_usage_and_invoices(debug):
    thirty = snapshot_of_a_run(*SMALL)
    ninety = snapshot_of_a_run("--customers=12", "--days=90")
    for kind in ("customers", "contacts", "contracts", "orders", "entitlements", "tickets"):
        assert thirty[kind] == ninety[kind], kind
    assert len(ninety["usage"]) == 12 * 90 - 1


# --- Staff ---------------------------------------------------------------------------------


def test_the_demo_staff_sign_in_with_the_demo_password_in_their_roles(debug):
    seed(*SMALL)
    expected = {
        "support": ([roles.SUPPORT], False),
        "manager": ([roles.ACCOUNT_MANAGERS], False),
        "opslead": ([roles.OPS_LEADS], False),
        "admin": ([], True),
        "dana": ([roles.ACCOUNT_MANAGERS], False),
        "lee": ([roles.ACCOUNT_MANAGERS], False),
    }
    for username, (groups, superuser) in expected.items():
        user = authenticate(SIGN_IN, username=username, password="opsdesk-demo")
        assert user is not None, username
        assert user.is_staff and user.is_active
        assert user.is_superuser is superuser
        assert list(user.groups.values_list("name", flat=True)) == groups
    assert User.objects.count() == 6


def test_manager_owns_at_least_a_third_and_one_in_twenty_has_nobody(debug):
    seed("--customers=40", "--days=1")
    owners = {}
    for customer in Customer.objects.select_related("account_manager"):
        name = customer.account_manager.username if customer.account_manager else None
        owners[name] = owners.get(name, 0) + 1
    assert owners == {"manager": 18, "dana": 10, "lee": 10, None: 2}


def test_a_rerun_leaves_a_changed_demo_password_alone(debug):
    seed(*SMALL)
    user = User.objects.get(username="manager")
    user.set_password("a-better-one")
    user.save()
    seed(*SMALL)
    assert authenticate(SIGN_IN, username="manager", password="a-better-one") == user


# --- The data ------------------------------------------------------------------------------


def test_every_customer_reports_usage_every_day_within_its_invariants(debug):
    seed(*SMALL)
    silent = customer_with(catalogue.Story.NO_USAGE_YESTERDAY)
    window = {TODAY - dt.timedelta(days=n) for n in range(1, 31)}
    for customer in Customer.objects.all():
        dates = set(customer.usage.values_list("date", flat=True))
        assert dates == (window - {YESTERDAY} if customer == silent else window), customer
    for row in UsageDaily.objects.all():
        assert row.errors <= row.requests
        assert row.active_users_1d <= row.active_users_7d
        if row.last_login_at is not None:
            assert row.last_login_at.date() <= row.date


def test_usage_stays_within_the_seats_of_the_contract_of_the_day(debug):
    seed("--customers=12", "--days=400")
    for customer in Customer.objects.prefetch_related("contracts", "usage"):
        live = [c for c in customer.contracts.all() if c.status != "draft"]
        for row in customer.usage.all():
            contract = next(
                (c for c in live if c.start_date <= row.date <= (c.end_date or row.date)), None
            )
            limit = contract.seats if contract else 8  # the trial of the onboarding story
            assert row.active_users_7d <= limit, (customer, row.date)


def test_a_customer_whose_weekly_users_dropped_by_a_third(debug):
    seed(*SMALL)
    customer = customer_with(catalogue.Story.USAGE_DROP)
    now = usage_on(customer, YESTERDAY).active_users_7d
    week_ago = usage_on(customer, YESTERDAY - dt.timedelta(days=7)).active_users_7d
    assert week_ago >= 5
    assert now <= week_ago * 0.7


def test_a_customer_with_an_error_spike_yesterday(debug):
    seed(*SMALL)
    customer = customer_with(catalogue.Story.ERROR_SPIKE)
    spike = usage_on(customer, YESTERDAY)
    before = customer.usage.filter(date__lt=YESTERDAY, requests__gt=0)
    rates = [row.errors / row.requests for row in before]
    median = statistics.median(rates)
    mad = statistics.median(abs(rate - median) for rate in rates)
    assert spike.requests >= 100
    assert spike.error_rate >= 0.02
    assert spike.error_rate > median + 3 * 1.4826 * mad
    assert customer.tickets.filter(priority="urgent", status="open").count() == 1


def test_a_dormant_customer(debug):
    seed(*SMALL)
    customer = customer_with(catalogue.Story.DORMANT)
    latest = usage_on(customer, YESTERDAY)
    assert latest.last_login_at < dt.datetime.combine(
        TODAY - dt.timedelta(days=20), dt.time(), tzinfo=dt.UTC
    )
    recent = customer.usage.filter(date__gt=TODAY - dt.timedelta(days=20))
    assert set(recent.values_list("active_users_1d", flat=True)) == {0}


def test_a_customer_with_no_usage_report_for_yesterday(debug):
    seed(*SMALL)
    customer = customer_with(catalogue.Story.NO_USAGE_YESTERDAY)
    assert usage_on(customer, YESTERDAY) is None
    assert usage_on(customer, YESTERDAY - dt.timedelta(days=1)) is not None


def test_contracts_cover_every_status_and_one_renews_within_30_days(debug):
    seed(*SMALL)
    assert set(Contract.objects.values_list("status", flat=True)) == {"active", "ended", "draft"}
    renewing = customer_with(catalogue.Story.RENEWAL_SOON)
    active = renewing.contracts.get(status="active")
    assert TODAY < active.end_date <= TODAY + dt.timedelta(days=30)
    draft = renewing.contracts.get(status="draft")
    assert draft.start_date == active.end_date + dt.timedelta(days=1)
    assert draft.seats > active.seats
    onboarding = customer_with(catalogue.Story.NEW_ONBOARDING)
    assert onboarding.status == "onboarding"
    assert list(onboarding.contracts.values_list("status", flat=True)) == ["draft"]
    for customer in Customer.objects.exclude(pk=onboarding.pk):
        assert customer.contracts.filter(status="active").count() == 1, customer
    for customer in Customer.objects.all():
        live = customer.contracts.exclude(status="draft")
        first = min((c.start_date for c in live), default=None)
        new = first is None or first > TODAY - dt.timedelta(days=30)
        assert customer.status == ("onboarding" if new else "active"), customer
    currencies = set(Contract.objects.values_list("currency", flat=True))
    assert "EUR" in currencies and currencies <= {"EUR", "USD", "GBP"}


def test_each_customer_has_one_primary_contact_among_two_to_four(debug):
    seed(*SMALL)
    for customer in Customer.objects.all():
        contacts = list(customer.contacts.all())
        assert 2 <= len(contacts) <= 4
        assert [c.is_primary for c in contacts].count(True) == 1


def test_entitlements_exist_in_every_state_with_what_the_state_requires(debug):
    seed(*SMALL)
    assert set(Entitlement.objects.values_list("state", flat=True)) == set(Entitlement.State.values)
    for entitlement in Entitlement.objects.select_related("order", "product"):
        assert entitlement.order.quantity == entitlement.order.entitlements.count()
        assert entitlement.customer_id == entitlement.order.customer_id
        assert entitlement.product.status == "active"
        if entitlement.state == "expired":
            assert entitlement.valid_until < TODAY
        if entitlement.state in ("issued", "assigned", "redeemed"):
            assert entitlement.valid_until is None or entitlement.valid_until >= TODAY
        if entitlement.state == "issued":
            assert entitlement.assignee_email == ""
    assert Product.objects.filter(status="retired").count() == 1


YEAR = [dt.date(2025, 12, 1)] + [dt.date(2026, month, 1) for month in range(1, 12)]


def months_under_contract(customer: Customer, months: list[dt.date]) -> list[dt.date]:
    contracts = customer.contracts.exclude(status="draft")
    return [
        month
        for month in months
        if any(
            c.start_date <= month_end(month) and (c.end_date or month) >= month for c in contracts
        )
    ]


def test_a_year_of_monthly_invoices_at_the_contract_fee_paid_but_for_this_month(debug):
    seed(*SMALL)
    mismatch = customer_with(catalogue.Story.AMOUNT_MISMATCH)
    twice = customer_with(catalogue.Story.OVERDUE_INVOICE)
    onboarding = customer_with(catalogue.Story.NEW_ONBOARDING)
    for customer in Customer.objects.exclude(pk=onboarding.pk):
        invoices = list(customer.invoices.order_by("period_start", "issued_at"))
        expected_months = months_under_contract(customer, YEAR)
        if customer == mismatch:  # the billing system skipped July
            expected_months.remove(dt.date(2026, 7, 1))
        if customer == twice:  # ... and invoiced August twice
            expected_months.insert(expected_months.index(dt.date(2026, 8, 1)), dt.date(2026, 8, 1))
        assert [invoice.period_start for invoice in invoices] == expected_months, customer
        for invoice in invoices:
            month = invoice.period_start
            last_day = month_end(month)
            assert invoice.period_end == last_day
            [contract] = [
                c
                for c in customer.contracts.exclude(status="draft")
                if c.start_date <= last_day and (c.end_date is None or c.end_date >= month)
            ]
            expected = contract.monthly_fee
            if customer == mismatch and month == dt.date(2026, 10, 1):
                expected = (expected * Decimal("0.9")).quantize(Decimal("0.01"))
            assert invoice.amount_due == expected
            assert invoice.currency == contract.currency
            current = month == dt.date(2026, 11, 1)
            overdue = customer == twice and month == dt.date(2026, 9, 1)
            assert invoice.status == ("open" if current or overdue else "paid")
            assert invoice.amount_paid == (0 if current or overdue else expected)
            assert invoice.due_at == month + dt.timedelta(days=30)
    assert onboarding.invoices.count() == 0
    [first, second] = twice.invoices.filter(period_start=dt.date(2026, 8, 1)).order_by("issued_at")
    assert second.number == f"{first.number}-B"


def test_a_year_of_usage_brings_an_invoice_for_every_month_under_contract(debug):
    seed(*SMALL[:1], "--days=365")
    window = [dt.date(2025, month, 1) for month in (11, 12)]
    window += [dt.date(2026, month, 1) for month in range(1, 12)]
    full_year = 0
    mismatch = customer_with(catalogue.Story.AMOUNT_MISMATCH)
    for customer in Customer.objects.all():
        # 365 days of usage reach into November 2025: invoices go back as far.
        under_contract = months_under_contract(customer, window)
        months = list(
            customer.invoices.order_by("period_start")
            .values_list("period_start", flat=True)
            .distinct()
        )
        if customer == mismatch:
            under_contract.remove(dt.date(2026, 7, 1))
        assert months == under_contract, customer
        full_year += len(months) == 13
    assert full_year >= 6


def test_tickets_cover_every_priority_status_and_category_with_their_deadlines(debug):
    seed(*SMALL)
    tickets = list(Ticket.objects.all())
    assert {t.priority for t in tickets} == set(Ticket.Priority.values)
    assert {t.status for t in tickets} == set(Ticket.Status.values)
    assert {t.category for t in tickets} == set(Ticket.Category.values)
    hours = {"urgent": 1, "high": 4, "normal": 8, "low": 24}
    for ticket in tickets:
        # The service levels' deadline (test_demo_sla.py): the target counted in business
        # hours or around the clock, never sooner than that many hours.
        assert ticket.first_response_due_at - ticket.created_at >= dt.timedelta(
            hours=hours[ticket.priority]
        )
        assert ticket.created_at <= NOW
        if ticket.first_responded_at:
            assert ticket.created_at < ticket.first_responded_at <= NOW
        if ticket.status in ("pending", "solved", "closed"):
            assert ticket.first_responded_at is not None


def test_tickets_from_unknown_tenants_are_unmatched(debug):
    seed(*SMALL)
    unmatched = Ticket.objects.filter(customer=None)
    assert unmatched.count() == 3
    for ticket in unmatched:
        assert "unmatched" in ticket.tags.values_list("name", flat=True)
        assert ticket.webhook_event.status == "processed"
        assert ticket.webhook_event.payload["data"]["subject"] == ticket.subject
        assert not Customer.objects.filter(
            external_id=ticket.webhook_event.payload["data"]["tenant_id"]
        ).exists()
    assert set(Tag.objects.values_list("name", flat=True)) == set(catalogue.TAGS)


def test_cases_are_open_acknowledged_and_one_resolved_with_a_note(debug):
    seed(*SMALL)
    assert sorted(Case.objects.values_list("kind", "state")) == [
        ("amount_mismatch", "open"),
        ("duplicate_invoice", "open"),
        ("failed_fulfilment", "open"),
        ("failed_fulfilment", "open"),
        ("failed_fulfilment", "resolved"),
        ("missing_invoice", "open"),
        ("overdue_invoice", "open"),
        ("problem_redemption", "acknowledged"),
    ]
    resolved = Case.objects.get(state="resolved")
    assert resolved.closing_note.startswith("Fulfilled now")
    assert resolved.opened_at < resolved.acknowledged_at < resolved.closed_at <= NOW
    assert resolved.subject.fulfilment == "fulfilled"
    failed = Case.objects.get(kind="failed_fulfilment", state="open", customer__isnull=False)
    assert failed.subject.fulfilment == "failed"
    assert failed.subject.product.status == "retired"
    assert failed.subject.entitlements.count() == 0
    orphan = Case.objects.get(customer=None)
    assert orphan.subject.customer is None
    redemption = Case.objects.get(kind="problem_redemption")
    assert redemption.subject.state == "assigned"
    assert redemption.owner.username == "opslead"
    # The billing findings are the real reconciliation's, one run per invoiced month.
    mismatch = Case.objects.get(kind="amount_mismatch")
    assert mismatch.found_amount == mismatch.subject.amount_due
    assert mismatch.found_amount < mismatch.expected_amount
    assert mismatch.period == dt.date(2026, 10, 1)
    assert ReconciliationRun.objects.filter(status="succeeded").count() == 12


def test_the_last_week_of_digests_was_swept_and_sent_at_seven_by_the_digest_task(debug):
    """So the deliveries log, the signals' histories and their ages tell the week before
    the demo started, at any hour it starts (today's digest is sent by `make run`)."""
    from opsdesk.demo.seed import SIGNAL_DAYS
    from opsdesk.health.digest import digest_recipients
    from opsdesk.health.models import HealthSignal, HealthSweep
    from opsdesk.models import DigestDelivery

    seed(*SMALL)
    days = [TODAY - dt.timedelta(days=back) for back in range(SIGNAL_DAYS, 0, -1)]
    keys = sorted(r.key for r in digest_recipients())
    assert len(keys) >= 2
    deliveries = DigestDelivery.objects.order_by("digest_date", "recipient_key")
    assert [(d.digest_date, d.recipient_key) for d in deliveries] == [
        (day, key) for day in days for key in keys
    ]
    for delivery in deliveries:
        seven = dt.datetime.combine(delivery.digest_date, dt.time(7), tzinfo=dt.UTC)
        assert (delivery.kind, delivery.status) == ("digest", "sent")
        assert delivery.sent_at == delivery.claimed_at == seven
        assert delivery.subject.startswith(f"Usage digest {delivery.digest_date:%a %-d %b %Y}: ")
        (created,) = delivery.history.all()
        assert (created.history_actor, created.history_date) == ("task:digests_send", seven)
    assert sorted(HealthSweep.objects.values_list("date", flat=True)) == days
    opened = HealthSignal.history.filter(history_type="+")
    assert opened.exists()
    assert set(opened.values_list("history_actor", flat=True)) == {"task:digests_send"}
    assert {d.time() for d in opened.values_list("history_date", flat=True)} == {dt.time(7)}

    before = DigestDelivery.history.count()
    seed(*SMALL)  # idempotent: nothing recorded twice
    assert DigestDelivery.history.count() == before


def test_each_day_the_billing_export_was_imported_is_recorded(debug):
    """The freshness panel reads the billing system's deliveries from these records: one
    per day the demo's invoices were imported, with what it created and updated."""
    from django.db.models.functions import TruncDate

    from billing.models import InvoiceImport

    seed(*SMALL)
    history = Invoice.history.filter(history_actor="command:import_invoices")
    by_day: dict = {}
    for row in history.annotate(day=TruncDate("history_date", tzinfo=dt.UTC)):
        new, changed, first = by_day.get(row.day, (0, 0, row.history_date))
        by_day[row.day] = (
            new + (row.history_type == "+"),
            changed + (row.history_type == "~"),
            min(first, row.history_date),
        )
    imports = InvoiceImport.objects.order_by("received_at")
    assert [(i.received_at, i.created, i.updated) for i in imports] == [
        (first, new, changed) for _, (new, changed, first) in sorted(by_day.items())
    ]
    assert {(i.status, i.started_by, i.rejected) for i in imports} == {
        ("succeeded", "command:import_invoices", 0)
    }
    assert sum(i.created for i in imports) == Invoice.objects.count()
    assert all(i.history.get().history_date == i.received_at for i in imports)
    count = imports.count()
    seed(*SMALL)
    assert InvoiceImport.objects.count() == count
