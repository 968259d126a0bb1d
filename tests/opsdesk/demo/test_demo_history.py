"""The demo's history tells its story (opsdesk.demo.pasts): every record's history starts
when the record was created and each change is recorded at its own time, in order, by
whoever made it, so traces, timelines and the as-of view agree with the records."""

import datetime as dt
from collections import defaultdict
from io import StringIO

import pytest
import time_machine
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import models
from simple_history.manager import HistoryManager

from audit.context import UNATTRIBUTED
from billing.reconciliation import BILLING_KINDS
from customers.answers import order_outcome
from customers.models import Contract, Entitlement, Order, UsageDaily
from customers.trace import entitlement_trace, order_trace
from kit import roles
from kit.months import add_months
from opsdesk.audit_log.selectors import customer_as_of, customer_audit
from opsdesk.demo.catalogue import RETIRED_SKU, UNKNOWN_TENANT_ORDER_TENANT
from opsdesk.scorecard.selectors import scorecard
from support import reporting
from support.models import Case, Ticket

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 14, 30, tzinfo=dt.UTC)
TODAY = NOW.date()
# The field that says when a record came to be, the first one a model has.
CREATED_FIELDS = (
    "created_at",
    "issued_at",
    "opened_at",
    "received_at",
    "started_at",
    "activated_at",
    "reported_at",
)


def audited_models() -> list[type[models.Model]]:
    return [
        model
        for model in apps.get_models()
        if isinstance(getattr(model, "history", None), HistoryManager)
    ]


@pytest.fixture(autouse=True)
def before(settings) -> dict[type[models.Model], set]:
    """Seeds the demo; returns the records there were before (migrations' data)."""
    settings.DEBUG = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    roles.roles_sync()  # a transactional test run before this one flushes the groups
    there = {m: set(m._default_manager.values_list("pk", flat=True)) for m in audited_models()}
    with time_machine.travel(NOW, tick=False):
        call_command("seed_demo", "--customers=12", "--days=30", stdout=StringIO())
        yield there


def created_field(model: type[models.Model]) -> models.Field | None:
    names = {f.name: f for f in model._meta.concrete_fields}
    return next((names[name] for name in CREATED_FIELDS if name in names), None)


def test_every_records_history_starts_at_its_creation_and_ends_as_the_record(before):
    checked, dated = set(), set()
    for model in audited_models():
        history = model.history.model
        rows = defaultdict(list)
        for row in history.objects.order_by("history_id"):
            rows[row.id].append(row)
        records = {
            record.pk: record for record in model._default_manager.exclude(pk__in=before[model])
        }
        if not records:
            continue
        checked.add(model._meta.label)
        label = model._meta.label
        assert set(rows) >= set(records), label
        created = created_field(model)
        tracked = [f.attname for f in history.tracked_fields]
        for pk, record in records.items():
            past = rows[pk]
            where = f"{label} {pk}"
            assert [row.history_type for row in past] == ["+"] + ["~"] * (len(past) - 1), where
            dates = [row.history_date for row in past]
            assert dates == sorted(dates), where  # written in the order it happened
            assert dates[-1] <= NOW, where
            assert UNATTRIBUTED not in {row.history_actor for row in past}, where
            if created is not None:
                dated.add(label)
                since = getattr(record, created.attname)
                if isinstance(created, models.DateTimeField):
                    assert dates[0] <= since, where
                else:
                    assert dates[0].date() <= since, where
            latest = past[-1]
            assert {name: getattr(latest, name) for name in tracked} == {
                name: getattr(record, name) for name in tracked
            }, where
    demo = {
        "customers.Customer", "customers.Contact", "customers.Contract", "customers.Product",
        "customers.Order", "customers.Entitlement", "customers.UsageDaily", "billing.Invoice",
        "billing.ReconciliationRun", "support.Tag", "support.WebhookEvent", "support.Ticket",
        "support.Case", "onboarding.ChecklistTemplate", "onboarding.TemplateItem",
        "onboarding.Checklist", "onboarding.ChecklistTask",
    }  # fmt: skip
    assert demo <= checked
    assert dated >= demo - {"customers.Product", "onboarding.TemplateItem", "support.Tag"}


def test_the_demo_records_were_created_at_their_events_not_when_it_was_seeded():
    """Spot checks of what the walk above allows to be earlier: the first history row is
    the creation moment itself."""
    for contract in Contract.objects.all():
        assert contract.history.earliest().history_date == contract.created_at
        assert contract.created_at.date() < contract.start_date
    for entitlement in Entitlement.objects.all():
        issued = entitlement.history.earliest()
        assert issued.history_date == entitlement.issued_at
        assert (issued.state, issued.assignee_email, issued.revoked_at) == ("issued", "", None)
    for ticket in Ticket.objects.all():
        assert ticket.history.earliest().history_date == ticket.created_at
    for case in Case.objects.filter(kind__in=["failed_fulfilment", "problem_redemption"]):
        assert case.history.earliest().history_date == case.opened_at
    usage = UsageDaily.objects.filter(date=TODAY - dt.timedelta(days=2)).first()
    assert usage.history.get().history_date == usage.reported_at
    assert usage.reported_at.date() == TODAY - dt.timedelta(days=1)


def test_the_as_of_view_shows_a_contract_from_its_start_and_not_before_it_was_signed():
    contract = (
        Contract.objects.filter(status=Contract.Status.ACTIVE, start_date__lt=TODAY)
        .order_by("start_date")
        .first()
    )
    between = contract.start_date + (TODAY - contract.start_date) / 2
    [shown] = [
        c for c in customer_as_of(contract.customer, between).contracts if c.id == contract.pk
    ]
    assert shown.status == Contract.Status.ACTIVE
    signed = contract.created_at.date()
    assert contract.pk not in {
        c.id for c in customer_as_of(contract.customer, signed - dt.timedelta(days=1)).contracts
    }
    [draft] = [
        c for c in customer_as_of(contract.customer, signed).contracts if c.id == contract.pk
    ]
    assert draft.status == Contract.Status.DRAFT


def test_an_ended_contract_is_active_until_its_end_and_ended_after_it():
    contract = Contract.objects.filter(status=Contract.Status.ENDED).first()
    end = contract.end_date

    def status_on(day):
        return next(c.status for c in customer_as_of(contract.customer, day).contracts
                    if c.id == contract.pk)  # fmt: skip

    assert status_on(end) == Contract.Status.ACTIVE
    assert status_on(end + dt.timedelta(days=1)) == Contract.Status.ENDED


def test_the_trace_of_a_revoked_code_shows_its_issue_then_its_revocation_at_their_times():
    code = Entitlement.objects.filter(state=Entitlement.State.REVOKED).first()
    entries = list(reversed(entitlement_trace(code).entries))  # oldest first
    own = [(e.verb, e.at) for e in entries if e.is_subject]
    assert own[0] == ("issued", code.issued_at)
    assert own[-1] == ("revoked", code.revoked_at)
    if code.assigned_at is not None:
        assert own[1] == ("assigned", code.assigned_at)
    assert [at for _, at in own] == sorted(at for _, at in own)
    states = [row.state for row in code.history.order_by("history_date", "history_id")]
    assert states[0] == "issued" and states[-1] == "revoked"
    assert states.count("revoked") == 1
    revoked = next(e for e in entries if e.is_subject and e.verb == "revoked")
    assert revoked.actor == "Sam Rivera"  # support, by name
    assert revoked.reason == code.revoke_reason
    issued = next(e for e in entries if e.is_subject and e.verb == "issued")
    assert issued.actor.startswith("webhook:msg_")


def test_a_solved_ticket_was_opened_by_its_webhook_and_solved_by_support_later():
    ticket = Ticket.objects.filter(status=Ticket.Status.SOLVED).first()
    past = list(ticket.history.order_by("history_date", "history_id"))
    assert past[0].history_actor.startswith("webhook:msg_")
    assert past[0].status == Ticket.Status.OPEN
    assert past[0].assignee_id is None
    assert past[-1].status == Ticket.Status.SOLVED
    assert past[-1].history_actor == "support"
    assert past[-1].history_date > ticket.first_responded_at > ticket.created_at
    assert past[-1].history_date == ticket.updated_at


def test_the_resolved_case_was_raised_acknowledged_and_resolved_in_order_by_the_ops_lead():
    case = Case.objects.get(kind="failed_fulfilment", state=Case.State.RESOLVED)
    past = list(case.history.order_by("history_date", "history_id"))
    assert [(row.state, row.history_date) for row in past] == [
        (Case.State.OPEN, case.opened_at),
        (Case.State.ACKNOWLEDGED, case.acknowledged_at),
        (Case.State.RESOLVED, case.closed_at),
    ]
    assert [row.history_actor for row in past][1:] == ["opslead", "opslead"]
    assert past[-1].history_change_reason == case.closing_note


def test_a_customer_timeline_reads_its_story_oldest_first():
    contract = Contract.objects.filter(status=Contract.Status.ENDED).first()
    customer = contract.customer
    entries = customer_audit(customer, page_size=500).entries
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    oldest = entries[-1]
    assert (oldest.record.model, oldest.verb) == ("customer", "created")
    assert oldest.at == customer.created_at
    manager = customer.account_manager
    assert oldest.actor == (manager or User.objects.get(username="admin")).get_full_name()


def test_a_failed_order_says_why_in_its_history_its_answer_and_its_trace():
    """Recorded as the product's order event records it: the order's first history row
    says why it was not fulfilled, in the words its case found."""
    whys = {}
    for order in Order.objects.filter(fulfilment=Order.Fulfilment.FAILED):
        case = Case.objects.get(kind="failed_fulfilment", subject_id=str(order.pk))
        whys[order.tenant_id] = case.found
        created = order.history.earliest()
        assert created.history_change_reason == (
            f"order {order.external_id} not fulfilled: {case.found}"
        )
        assert case.summary == f"Order {order.external_id}: {case.found}"
        told = order_outcome(order=order)
        assert (told.headline, told.failure) == ("Not fulfilled", case.found)
        assert told.why.startswith(
            f"The product's order event could not be fulfilled: {case.found}. Nothing was issued"
        )
        [ordered] = [e for e in order_trace(order).entries if e.is_subject]
        assert (ordered.verb, ordered.reason) == (
            "ordered, not fulfilled",
            created.history_change_reason,
        )
    assert sorted(whys.values()) == [
        f"no customer with tenant id {UNKNOWN_TENANT_ORDER_TENANT}",
        f"product {RETIRED_SKU} is retired",
    ]


def test_the_order_ops_fulfilled_by_hand_says_why_it_had_failed_first():
    case = Case.objects.get(kind="failed_fulfilment", state=Case.State.RESOLVED)
    order = case.subject

    told = order_outcome(order=order)

    assert (order.fulfilment, told.failure) == (Order.Fulfilment.FULFILLED, "fulfilment timed out")
    assert told.why.startswith(
        f"It had failed first: fulfilment timed out. {order.quantity} × Admin training voucher "  # noqa: RUF001
        f"issued to {order.customer.name} on "
    )
    assert told.why.endswith(" by Olga Petrova.")  # the ops lead, by name


def test_the_scorecard_counts_every_customer_month_the_demo_reconciled():
    """Seeding reconciles the demo's year: the scorecard's week counts every customer-month
    whose invoices were due (December to October; November's are not yet), and the share
    settled without a touch is those with no finding (the demo's findings are open)."""
    final = [dt.date(2025, 12, 1)] + [dt.date(2026, m, 1) for m in range(1, 11)]
    active = {
        (contract.customer_id, month)
        for contract in Contract.objects.filter(status__in=["active", "ended"])
        for month in final
        if contract.start_date <= add_months(month, 1) - dt.timedelta(days=1)
        and (contract.end_date is None or contract.end_date >= month)
    }
    findings = set(
        Case.objects.filter(kind__in=BILLING_KINDS, period__in=final).values_list(
            "customer_id", "period"
        )
    )
    filters = reporting.ReportFilter(moment=NOW + dt.timedelta(hours=1), weeks=1)

    [week] = scorecard(filters=filters).weeks

    assert findings and findings <= active
    assert (week.billing.count, week.billing.untouched) == (
        len(active),
        len(active - findings),
    )
    assert week.billing.untouched > 0
