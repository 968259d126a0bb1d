"""The CRM's accounts and contracts, from the signed delivery to the customer and contract
(customers.crm through support.crm_events): idempotent, ordered by the CRM's updated_at,
attributed to the webhook, and a contract whose account is unknown waits, then becomes a
case."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User

from audit.context import acting_as_user
from customers.models import Contract, Customer
from onboarding import signals
from support.models import Case, WebhookEvent
from support.webhooks import event_process, events_due
from tests import builders
from tests.customers.crm_sender import (
    ACCOUNT,
    CONTRACT,
    CRM_SECRET,
    account,
    contract,
    crm_deliver,
    crm_post,
    crm_receive,
    crm_signed,
)
from tests.personas import staff_user

pytestmark = pytest.mark.django_db

TAKEN = dt.datetime(2026, 11, 21, 9, 29, 41, tzinfo=dt.UTC)
SIGNED = dt.datetime(2026, 11, 21, 9, 30, 58, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = [CRM_SECRET]
    settings.OPSDESK_WEBHOOK_MAX_ATTEMPTS = 3


@pytest.fixture
def enqueued(monkeypatch):
    """What the contract's save asks the onboarding worker to do (onboarding.signals)."""
    calls = []
    monkeypatch.setattr(signals, "publish_after_commit", lambda *args: calls.append(args))
    return calls


def customer_row(customer: Customer) -> tuple:
    customer.refresh_from_db()
    return (
        customer.crm_id,
        customer.name,
        customer.external_id,
        customer.account_manager,
        customer.status,
        customer.crm_updated_at,
    )


def contract_row(contract: Contract) -> tuple:
    contract.refresh_from_db()
    return (
        contract.crm_id,
        contract.customer.crm_id,
        contract.plan,
        contract.seats,
        contract.monthly_fee,
        contract.price_per_extra_seat,
        contract.currency,
        contract.start_date,
        contract.end_date,
        contract.status,
        contract.integrations,
        contract.crm_updated_at,
    )


ACME_CONTRACT = (
    CONTRACT,
    ACCOUNT,
    "growth",
    50,
    Decimal("1200.00"),
    Decimal("25.00"),
    "EUR",
    dt.date(2026, 12, 1),
    dt.date(2027, 11, 30),
    "active",
    ["slack", "sso"],
    SIGNED,
)


def history(record) -> list[tuple]:
    return [
        (row.history_type, row.history_actor, row.history_change_reason)
        for row in record.history.order_by("history_id")
    ]


def outcome(event: WebhookEvent) -> tuple:
    return (event.status, event.attempts, event.error, event.warning)


# --- Accounts -----------------------------------------------------------------------------


def test_a_signed_account_becomes_a_customer_through_the_stored_event(client, manager):
    assert crm_post(client, *crm_signed(account(), webhook_id="msg_a1")).status_code == 202
    event = WebhookEvent.objects.get()
    assert events_due() == [event.pk]  # what the worker (or the sweep) picks up

    assert event_process(event_id=event.pk) == "processed"

    event.refresh_from_db()
    assert outcome(event) == ("processed", 1, "", "")
    customer = Customer.objects.get()
    assert customer_row(customer) == (ACCOUNT, "Acme Corp", "acme-7f3a", manager, "active", TAKEN)
    assert history(customer) == [
        ("+", "webhook:msg_a1", "CRM account 001Dn00000Acme, as of 2026-11-21 09:29:41 UTC")
    ]


def test_the_same_delivery_again_is_a_duplicate_with_no_second_effect(client, manager):
    body, headers = crm_signed(account(), webhook_id="msg_a1")
    crm_post(client, body, headers)
    event = WebhookEvent.objects.get()
    event_process(event_id=event.pk)

    response = crm_post(client, body, headers)

    assert (response.status_code, response.json()) == (200, {"id": "msg_a1", "status": "duplicate"})
    assert event_process(event_id=event.pk) is None
    assert WebhookEvent.objects.count() == 1
    assert len(history(Customer.objects.get())) == 1


def test_the_same_account_under_a_new_id_changes_nothing_and_writes_no_history(manager):
    crm_deliver(account(), "msg_a1")
    again = crm_deliver(account(), "msg_a2")
    assert outcome(again) == ("processed", 1, "", "")
    assert history(Customer.objects.get()) == [
        ("+", "webhook:msg_a1", "CRM account 001Dn00000Acme, as of 2026-11-21 09:29:41 UTC")
    ]


def test_a_change_is_one_history_row_attributed_to_its_webhook(manager):
    crm_deliver(account(), "msg_a1")
    crm_deliver(account(name="Acme Group", updated_at="2026-11-22T08:00:00+01:00"), "msg_a2")
    customer = Customer.objects.get()
    assert customer_row(customer) == (
        ACCOUNT,
        "Acme Group",
        "acme-7f3a",
        manager,
        "active",
        dt.datetime(2026, 11, 22, 7, 0, tzinfo=dt.UTC),
    )
    assert history(customer)[1:] == [
        ("~", "webhook:msg_a2", "CRM account 001Dn00000Acme changed, as of 2026-11-22 07:00:00 UTC")
    ]
    assert customer.history.latest().prev_record.name == "Acme Corp"


def test_an_older_change_delivered_after_a_newer_one_changes_nothing_and_warns(manager):
    crm_deliver(account(name="Acme Group", updated_at="2026-11-22T08:00:00Z"), "msg_new")
    older = crm_deliver(account(name="Acme Corp", status="churned"), "msg_old")
    assert outcome(older) == (
        "processed",
        1,
        "",
        "account 001Dn00000Acme: this change (2026-11-21 09:29:41 UTC) is older than the one "
        "taken (2026-11-22 08:00:00 UTC); nothing changed",
    )
    customer = Customer.objects.get()
    assert (customer.name, customer.status) == ("Acme Group", "active")
    assert len(history(customer)) == 1


def test_an_unknown_account_manager_leaves_the_account_unassigned_and_says_so(manager):
    crm_deliver(account(), "msg_a1")
    staff_user("gone", is_active=False)
    User.objects.create_user(username="pat", email="pat@opsdesk.test")  # not staff
    for email in ("nobody@opsdesk.test", "gone@opsdesk.test", "pat@opsdesk.test"):
        event = crm_deliver(
            account(account_manager_email=email, updated_at="2026-11-22T08:00:00Z"),
            f"msg_{email}",
        )
        assert outcome(event) == (
            "processed",
            1,
            "",
            f"account manager {email} matches no active staff member: the account has no "
            "account manager",
        )
        assert Customer.objects.get().account_manager is None


def test_the_manager_is_found_whatever_the_case_of_the_email(manager):
    crm_deliver(account(account_manager_email="ALICE@OPSDESK.TEST"), "msg_a1")
    assert Customer.objects.get().account_manager == manager


def test_an_account_without_a_manager_has_none_without_a_warning(customer, manager):
    event = crm_deliver(account(crm_id="CRM-1001", account_manager_email=None), "msg_a1")
    assert outcome(event) == ("processed", 1, "", "")
    assert Customer.objects.get(pk=customer.pk).account_manager is None


def test_a_customer_typed_in_opsdesk_is_linked_by_its_tenant_id_keeping_its_history(manager):
    typed = builders.customer(external_id="acme-7f3a", name="ACME (typed)")
    with acting_as_user(manager):
        typed.status = Customer.Status.PAUSED
        typed.save()
    before = history(typed)

    crm_deliver(account(), "msg_a1")

    assert Customer.objects.get() == typed
    assert customer_row(typed) == (ACCOUNT, "Acme Corp", "acme-7f3a", manager, "active", TAKEN)
    assert history(typed) == [
        *before,
        ("~", "webhook:msg_a1", "linked to CRM account 001Dn00000Acme by its tenant id"),
    ]
    assert [row[1] for row in before] == ["test:builder", "alice"]


def test_a_customer_with_the_crm_id_typed_in_is_linked_by_it(customer, manager):
    # Acme was typed with CRM id CRM-1001; the CRM sends it under another tenant id.
    crm_deliver(account(crm_id="CRM-1001", tenant_id="acme-new"), "msg_a1")
    assert customer_row(customer) == ("CRM-1001", "Acme Corp", "acme-new", manager, "active", TAKEN)
    assert history(customer)[-1] == (
        "~",
        "webhook:msg_a1",
        "linked to CRM account CRM-1001 by its CRM id",
    )


def test_a_tenant_id_of_another_crm_account_is_refused_and_retried(customer):
    # Acme (tenant acme-7f3a) is CRM account CRM-1001: another account claiming its
    # tenant id is a conflict for a person, and nothing changes meanwhile.
    event = crm_deliver(account(), "msg_a1")
    assert (event.status, event.attempts) == ("pending", 1)
    assert event.error == (
        "CrmError: tenant id acme-7f3a is Acme Corp's, which is CRM account CRM-1001, "
        "not 001Dn00000Acme"
    )
    assert list(Customer.objects.values_list("crm_id", flat=True)) == ["CRM-1001"]


def test_an_account_without_a_tenant_id_waits_for_one_and_keeps_it(manager):
    crm_deliver(account(tenant_id=None), "msg_a1")
    customer = Customer.objects.get()
    assert (customer.external_id, customer.crm_id) == ("", ACCOUNT)

    crm_deliver(account(updated_at="2026-11-22T08:00:00Z"), "msg_a2")
    crm_deliver(account(tenant_id="", status=None, updated_at="2026-11-23T08:00:00Z"), "msg_a3")

    customer.refresh_from_db()
    assert (customer.external_id, customer.status) == ("acme-7f3a", "active")


# --- Contracts ----------------------------------------------------------------------------


@pytest.fixture
def acme_account(manager) -> Customer:
    crm_deliver(account(), "msg_a1")
    return Customer.objects.get()


def test_a_signed_contract_becomes_the_accounts_contract(acme_account, enqueued):
    event = crm_deliver(contract(), "msg_c1")
    assert outcome(event) == ("processed", 1, "", "")
    created = Contract.objects.get()
    assert created.customer == acme_account
    assert contract_row(created) == ACME_CONTRACT
    assert history(created) == [
        ("+", "webhook:msg_c1", "CRM contract 800Dn00000C42 created, as of 2026-11-21 09:30:58 UTC")
    ]
    # Active from the CRM: its checklist is generated as an activation in the admin's is.
    assert enqueued == [("onboarding.checklist_generate", created.pk)]


def test_the_same_contract_under_a_new_id_changes_nothing(acme_account, enqueued):
    crm_deliver(contract(), "msg_c1")
    enqueued.clear()
    again = crm_deliver(contract(integrations=["sso", "slack", "sso"]), "msg_c2")
    assert outcome(again) == ("processed", 1, "", "")
    assert len(history(Contract.objects.get())) == 1
    assert enqueued == []


def test_an_older_contract_change_after_a_newer_one_changes_nothing_and_warns(acme_account):
    crm_deliver(contract(seats=80, updated_at="2026-11-25T10:00:00Z"), "msg_new")
    older = crm_deliver(contract(), "msg_old")
    assert older.warning == (
        "contract 800Dn00000C42: this change (2026-11-21 09:30:58 UTC) is older than the one "
        "taken (2026-11-25 10:00:00 UTC); nothing changed"
    )
    assert Contract.objects.get().seats == 80


def test_a_scope_change_from_the_crm_updates_the_checklist_as_an_edit_does(acme_account, enqueued):
    crm_deliver(contract(), "msg_c1")
    taken = Contract.objects.get()
    enqueued.clear()
    crm_deliver(contract(seats=120, updated_at="2026-11-25T10:00:00Z"), "msg_c2")
    assert enqueued == [("onboarding.checklist_sync", taken.pk)]
    assert history(taken)[-1] == (
        "~",
        "webhook:msg_c2",
        "CRM contract 800Dn00000C42 changed, as of 2026-11-25 10:00:00 UTC",
    )


def test_a_draft_becoming_active_in_the_crm_generates_its_checklist(acme_account, enqueued):
    crm_deliver(contract(status="draft", seats=0), "msg_c1")
    assert enqueued == []
    crm_deliver(contract(updated_at="2026-11-25T10:00:00Z"), "msg_c2")
    assert enqueued == [("onboarding.checklist_generate", Contract.objects.get().pk)]


def test_an_unknown_integration_is_kept_as_the_crm_names_it(acme_account):
    crm_deliver(contract(integrations=["teams", "sso"]), "msg_c1")
    assert Contract.objects.get().integrations == ["sso", "teams"]


# --- A contract before its account --------------------------------------------------------

T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)


def test_a_contract_waits_for_its_account_and_is_taken_when_it_arrives(manager):
    with time_machine.travel(T0, tick=False):
        waiting = crm_deliver(contract(), "msg_c1")
        assert outcome(waiting) == (
            "pending",
            1,
            "CrmAccountUnknown: contract 800Dn00000C42 waits for CRM account "
            "001Dn00000Acme, which opsdesk has not received yet",
            "",
        )
        assert waiting.next_attempt_at == T0 + dt.timedelta(seconds=30)
        assert not Contract.objects.exists()

    with time_machine.travel(T0 + dt.timedelta(seconds=5), tick=False):
        crm_deliver(account(), "msg_a1")
        # The account brought its waiting contract forward: due now, not in 25 s.
        waiting.refresh_from_db()
        assert waiting.next_attempt_at == T0 + dt.timedelta(seconds=5)
        assert events_due() == [waiting.pk]
        assert event_process(event_id=waiting.pk) == "processed"

    waiting.refresh_from_db()
    assert outcome(waiting) == ("processed", 2, "", "")
    assert contract_row(Contract.objects.get()) == ACME_CONTRACT
    assert waiting.history.filter(
        history_change_reason="CRM account 001Dn00000Acme arrived", history_actor="webhook:msg_a1"
    ).exists()


def test_a_contract_whose_account_arrives_before_its_retries_end_is_taken_by_the_sweep(
    manager,
):
    with time_machine.travel(T0, tick=False):
        waiting = crm_deliver(contract(), "msg_c1")
    with time_machine.travel(T0 + dt.timedelta(minutes=1), tick=False):
        assert event_process(event_id=waiting.pk) == "pending"  # attempt 2 of 3
        # Delivered before any worker saw the contract again: the sweep takes it.
        account_event = crm_receive(account(), "msg_a1")
        event_process(event_id=account_event.pk)
    with time_machine.travel(T0 + dt.timedelta(minutes=10), tick=False):
        assert events_due() == [waiting.pk]
        assert event_process(event_id=waiting.pk) == "processed"
    assert Contract.objects.get().customer.crm_id == ACCOUNT


def unknown_past_retries(payload=None, webhook_id="msg_c1", start=T0) -> WebhookEvent:
    """A contract of an account that never arrives, tried its 3 times."""
    with time_machine.travel(start, tick=False):
        event = crm_deliver(payload or contract(), webhook_id)
    for minutes in (1, 10):
        with time_machine.travel(start + dt.timedelta(minutes=minutes), tick=False):
            event_process(event_id=event.pk)
    event.refresh_from_db()
    return event


def test_a_contract_still_unknown_at_its_last_attempt_becomes_a_case_for_ops(db):
    event = unknown_past_retries()
    case = Case.objects.get()
    assert outcome(event) == (
        "processed",
        3,
        "",
        "contract 800Dn00000C42 waits for CRM account 001Dn00000Acme, which opsdesk has not "
        f"received yet: case #{case.pk} opened for ops",
    )
    assert (case.kind, case.state, case.customer, case.subject, case.summary) == (
        "crm_unknown_account",
        "open",
        None,
        event,
        "CRM contract 800Dn00000C42 is for CRM account 001Dn00000Acme, which opsdesk has not "
        "received",
    )
    assert (case.expected, case.found) == (
        "CRM account 001Dn00000Acme received before or soon after its contract",
        "still unknown after 3 attempts to take the contract (webhook msg_c1)",
    )
    assert case.details == {
        "crm_contract_id": CONTRACT,
        "crm_account_id": ACCOUNT,
        "webhook_id": "msg_c1",
        "updated_at": "2026-11-21T09:30:58+00:00",
    }
    assert case.history.get().history_actor == "webhook:msg_c1"
    assert not Contract.objects.exists()


def test_a_newer_change_of_a_waiting_contract_is_the_one_its_case_takes(db):
    first = unknown_past_retries()
    newer = unknown_past_retries(
        contract(seats=70, updated_at="2026-11-22T09:00:00Z"), "msg_c2", T0 + dt.timedelta(hours=1)
    )
    case = Case.objects.get()
    assert (case.subject, case.details["webhook_id"]) == (newer, "msg_c2")
    assert newer.warning.endswith(f"case #{case.pk} opened for ops")
    assert first.warning.endswith(f"case #{case.pk} opened for ops")
    # An older one running out afterwards leaves the case with the newer change.
    unknown_past_retries(contract(seats=10), "msg_c0", T0 + dt.timedelta(hours=2))
    case.refresh_from_db()
    assert case.subject == newer


# --- The case's resolutions ---------------------------------------------------------------

NOTE = "Sales confirmed the account."
NOW = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def crm_lead(db) -> User:
    """Olga, an ops lead who may link CRM accounts (the permission the roles sync grants
    ops leads)."""
    from django.contrib.auth.models import Permission

    from kit import roles

    user = staff_user("olga", roles.OPS_LEADS)
    user.user_permissions.add(Permission.objects.get(codename="link_crm_account"))
    return User.objects.get(pk=user.pk)


def resolve(case, key, by, **data):
    from opsdesk.casework.resolutions import case_resolve

    with time_machine.travel(NOW, tick=False), acting_as_user(by):
        return case_resolve(case=case, key=key, data=data, note=NOTE, by=by)


def test_the_case_offers_link_and_create(db):
    from opsdesk.casework.resolutions import resolutions_for

    unknown_past_retries()
    offered = [(entry.key, entry.label, why) for entry, why in resolutions_for(Case.objects.get())]
    assert offered == [
        ("link", "Link to an existing customer", ""),
        ("create", "Create the customer", ""),
    ]


def test_link_gives_the_customer_the_crm_id_and_takes_the_waiting_contract(crm_lead, enqueued):
    globex = builders.customer(external_id="globex-1", name="Globex")
    unknown_past_retries()
    case = Case.objects.get()

    closed, done = resolve(case, "link", crm_lead, customer=globex)

    taken = Contract.objects.get()
    assert contract_row(taken) == ACME_CONTRACT
    assert taken.customer == globex
    assert done == (
        "Globex linked to CRM account 001Dn00000Acme. CRM contract 800Dn00000C42 taken: the "
        "contract is active."
    )
    assert (closed.state, closed.customer, closed.closing_note) == (
        "resolved",
        globex,
        f"{done} {NOTE}",
    )
    globex.refresh_from_db()
    assert (globex.crm_id, globex.crm_updated_at) == (ACCOUNT, None)  # the CRM fills it in
    link = globex.history.order_by("history_id").last()
    assert (link.history_actor, link.history_user_id, link.history_for) == (
        "olga",
        crm_lead.pk,
        f"support.case:{case.pk}",
    )
    made = taken.history.get()
    assert (made.history_actor, made.history_for) == ("olga", f"support.case:{case.pk}")
    assert enqueued == [("onboarding.checklist_generate", taken.pk)]


def test_create_makes_the_customer_and_takes_the_waiting_contract(crm_lead, manager):
    unknown_past_retries()
    case = Case.objects.get()

    _, done = resolve(case, "create", crm_lead, name="Acme Corp", tenant_id="")

    customer = Customer.objects.get()
    assert (customer.crm_id, customer.name, customer.external_id, customer.crm_updated_at) == (
        ACCOUNT,
        "Acme Corp",
        "",
        None,
    )
    assert done == (
        "Acme Corp created for CRM account 001Dn00000Acme. CRM contract 800Dn00000C42 taken: "
        "the contract is active."
    )
    assert contract_row(Contract.objects.get()) == ACME_CONTRACT
    # The CRM's account, when it comes, is this customer.
    crm_deliver(account(), "msg_a1")
    assert customer_row(customer) == (ACCOUNT, "Acme Corp", "acme-7f3a", manager, "active", TAKEN)


def test_create_is_offered_no_more_once_the_account_exists(crm_lead):
    from opsdesk.casework.resolutions import ResolutionError, resolutions_for

    unknown_past_retries()
    case = Case.objects.get()
    builders.customer(external_id="acme-7f3a", name="Acme", crm_id=ACCOUNT)
    why = {entry.key: why for entry, why in resolutions_for(case)}
    assert why == {"link": "", "create": "CRM account 001Dn00000Acme is Acme now: link it instead."}
    with pytest.raises(ResolutionError, match="link it instead"):
        resolve(case, "create", crm_lead, name="Acme", tenant_id="")
    assert Customer.objects.count() == 1


def test_linking_a_customer_of_another_crm_account_is_refused_and_changes_nothing(
    crm_lead, customer
):
    from opsdesk.casework.resolutions import ResolutionError

    unknown_past_retries()
    case = Case.objects.get()
    with pytest.raises(ResolutionError, match="Acme Corp is CRM account CRM-1001, not"):
        resolve(case, "link", crm_lead, customer=customer)
    case.refresh_from_db()
    customer.refresh_from_db()
    assert (case.state, customer.crm_id, Contract.objects.count()) == ("open", "CRM-1001", 1)


def test_a_case_worker_without_the_crm_permission_is_refused(db):
    from django.contrib.auth.models import Permission

    from opsdesk.casework.resolutions import ResolutionError

    worker = staff_user("casey")
    worker.user_permissions.add(Permission.objects.get(codename="change_case"))
    worker = User.objects.get(pk=worker.pk)
    unknown_past_retries()
    with pytest.raises(ResolutionError, match=r"customers\.link_crm_account"):
        resolve(Case.objects.get(), "create", worker, name="Acme", tenant_id="")
    assert not Customer.objects.exists()


# --- Consequences: reconciliation reads the CRM's terms -----------------------------------


def test_reconciliation_expects_the_crms_fee_of_each_account_even_before_its_tenant_exists(
    db,
):
    from billing.reconciliation import reconciliation_run

    october = {"start_date": "2026-10-01", "end_date": "2027-09-30"}
    for n, fee in ((1, "1200.00"), (2, "300.00")):
        crm_deliver(account(crm_id=f"001-{n}", name=f"New {n}", tenant_id=None), f"msg_a{n}")
        terms = {"crm_contract_id": f"800-{n}", "crm_account_id": f"001-{n}", "monthly_fee": fee}
        crm_deliver(contract(**terms, **october), f"msg_c{n}")

    reconciliation_run(month=dt.date(2026, 10, 1), today=dt.date(2026, 11, 21))

    # Neither has a tenant id yet: each its own finding, keyed by its CRM id.
    assert sorted(
        Case.objects.filter(kind="missing_invoice").values_list(
            "customer__crm_id", "expected_amount", "dedupe_key"
        )
    ) == [
        ("001-1", Decimal("1200.00"), "missing_invoice:tenant:crm-001-1:2026-10"),
        ("001-2", Decimal("300.00"), "missing_invoice:tenant:crm-001-2:2026-10"),
    ]


def test_the_inbox_resolves_a_waiting_contract_by_creating_its_customer(client, crm_lead):
    from django.urls import reverse

    unknown_past_retries()
    case = Case.objects.get()
    url = reverse("admin:support_case_resolve", args=[case.pk, "create"])
    client.force_login(crm_lead)

    page = client.get(url).content.decode()
    assert "Create the customer" in page and 'name="tenant_id"' in page

    response = client.post(
        url, {"name": "Acme Corp", "tenant_id": "acme-7f3a", "note": "New logo, signed today."}
    )

    assert response.status_code == 302
    case.refresh_from_db()
    assert case.state == "resolved"
    assert Contract.objects.get().customer == Customer.objects.get(external_id="acme-7f3a")
