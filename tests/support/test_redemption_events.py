"""``entitlement.redeemed`` events redeem a seat, or open a case for ops, through the receiver."""

import datetime as dt

import pytest

from audit.context import acting_as
from customers.entitlements import (
    entitlement_assign,
    entitlement_redeem,
    entitlement_reissue_code,
    entitlement_revoke,
    entitlements_expire,
)
from customers.models import Entitlement
from support.models import Case, WebhookEvent
from support.order_events import entitlement_record_redemption
from support.webhook_schemas import parse_event
from support.webhooks import event_process
from tests import builders
from tests.records import SEAT_PAID_AT, issue
from tests.support.sender import REDEEMED_AT, SECRET, deliver, entitlement_redeemed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


@pytest.fixture
def seat(customer) -> Entitlement:
    """An issued seat of Acme."""
    return issue(customer)


@pytest.fixture
def assigned(seat) -> Entitlement:
    """Acme's seat, assigned to Ann."""
    with acting_as("test:fixture"):
        return entitlement_assign(entitlement=seat, email="ann@acme.com", reason="new hire")


def snapshot(entitlement: Entitlement) -> tuple:
    entitlement.refresh_from_db()
    return (
        entitlement.code,
        entitlement.customer_id,
        entitlement.state,
        entitlement.assignee_email,
        entitlement.redeemed_by_email,
        entitlement.redeemed_at,
        entitlement.revoked_at,
        entitlement.history.count(),
    )


def the_case() -> Case:
    case = Case.objects.get()
    assert (case.kind, case.state) == ("problem_redemption", "open")
    return case


# --- Accepted ----------------------------------------------------------------------------


def test_an_issued_code_is_redeemed_by_the_user_with_history(seat):
    event = deliver(entitlement_redeemed(seat.code, user_email="Ann@Acme.com"), "msg_9")
    assert (event.status, event.error, event.warning) == ("processed", "", "")
    seat.refresh_from_db()
    assert (seat.state, seat.assignee_email, seat.redeemed_by_email, seat.redeemed_at) == (
        "redeemed",
        "ann@acme.com",
        "ann@acme.com",
        REDEEMED_AT,
    )
    latest = seat.history.latest()
    assert (latest.history_type, latest.history_actor, latest.history_change_reason) == (
        "~",
        "webhook:msg_9",
        "redeemed in the product",
    )
    assert not Case.objects.exists()


def test_an_assigned_code_is_redeemed_by_its_assignee(assigned):
    deliver(entitlement_redeemed(assigned.code))
    assigned.refresh_from_db()
    assert (assigned.state, assigned.redeemed_by_email) == ("redeemed", "ann@acme.com")


def test_the_code_is_found_whatever_its_case_and_spacing(seat):
    deliver(entitlement_redeemed(f"  {seat.code.lower()} "))
    seat.refresh_from_db()
    assert seat.state == "redeemed"


def test_the_same_redemption_again_changes_nothing(seat):
    event = deliver(entitlement_redeemed(seat.code), "msg_1")
    before = snapshot(seat)
    assert event_process(event_id=event.pk) is None
    entitlement_record_redemption(event, parse_event(event.payload)[1])
    again = deliver(entitlement_redeemed(seat.code), "msg_2")
    assert (again.status, again.warning) == ("processed", "")
    assert snapshot(seat) == before
    assert not Case.objects.exists()


# --- Refused: a case, nothing changed, the event processed -------------------------------


def assert_refused(event: WebhookEvent, case: Case, code: str, why: str) -> None:
    assert (event.status, event.attempts, event.error, event.next_attempt_at) == (
        "processed",
        1,
        "",
        None,
    )
    assert event.warning == f"redemption of {code} not recorded: case #{case.pk} ({why})"


def test_an_unknown_code_opens_a_case_for_the_tenant(customer):
    event = deliver(entitlement_redeemed("k7qp-4xmd-9rtw", user_email="bob@acme.com"))
    case = the_case()
    assert (
        case.customer,
        case.subject,
        case.summary,
        case.expected,
        case.found,
        case.dedupe_key,
    ) == (
        customer,
        None,
        "Code K7QP-4XMD-9RTW redeemed by bob@acme.com: the code is unknown",
        "a code issued to acme-7f3a",
        "redeemed by bob@acme.com on 21 Nov 2026 09:30",
        "problem_redemption:code:K7QP-4XMD-9RTW",
    )
    assert_refused(event, case, "K7QP-4XMD-9RTW", "the code is unknown")
    assert not Entitlement.objects.exists()


def test_a_code_of_another_tenant_opens_a_case_and_changes_nothing(seat):
    builders.customer(external_id="globex-1", name="Globex")
    before = snapshot(seat)
    event = deliver(entitlement_redeemed(seat.code, tenant_id="globex-1"))
    case = the_case()
    assert (case.customer, case.subject, case.expected, case.found) == (
        seat.customer,
        seat,
        "a code issued to globex-1",
        "redeemed by ann@acme.com on 21 Nov 2026 09:30",
    )
    assert_refused(event, case, seat.code, "the code was issued to acme-7f3a")
    assert snapshot(seat) == before


def test_a_revoked_code_opens_a_case_and_changes_nothing(seat):
    with acting_as("test:fixture"):
        entitlement_revoke(entitlement=seat, reason="refunded")
    before = snapshot(seat)
    event = deliver(entitlement_redeemed(seat.code))
    case = the_case()
    assert (case.subject, case.expected) == (seat, "a live entitlement")
    assert case.dedupe_key == f"problem_redemption:entitlement:{seat.code}:ann@acme.com"
    assert event.warning.endswith(": refunded)")
    assert snapshot(seat) == before


def test_an_expired_code_opens_a_case_and_changes_nothing(seat):
    with acting_as("test:fixture"):
        assert entitlements_expire(today=dt.date(2028, 1, 1)) == 1
    before = snapshot(seat)
    event = deliver(entitlement_redeemed(seat.code))
    case = the_case()
    assert (case.expected, case.found) == (
        "a live entitlement",
        "redeemed by ann@acme.com on 21 Nov 2026 09:30",
    )
    assert_refused(event, case, seat.code, "it ended on 01 Nov 2027")
    assert snapshot(seat) == before


def test_a_code_redeemed_after_its_end_date_is_refused_before_the_sweep_expires_it(seat):
    before = snapshot(seat)
    event = deliver(entitlement_redeemed(seat.code, redeemed_at="2027-11-02T00:00:00Z"))
    case = the_case()
    assert_refused(event, case, seat.code, "it ended on 01 Nov 2027")
    assert snapshot(seat) == before


def test_a_code_redeemed_by_someone_else_opens_a_case_and_changes_nothing(seat):
    with acting_as("test:fixture"):
        entitlement_redeem(
            entitlement=seat,
            email="ann@acme.com",
            at=SEAT_PAID_AT,
            reason="redeemed in the product",
        )
    before = snapshot(seat)
    event = deliver(entitlement_redeemed(seat.code, user_email="bob@acme.com"))
    case = the_case()
    assert (case.subject, case.expected, case.found) == (
        seat,
        "redeemed once, by ann@acme.com",
        "redeemed by bob@acme.com on 21 Nov 2026 09:30",
    )
    assert_refused(event, case, seat.code, "it was redeemed by ann@acme.com on 1 Nov 2026 08:00")
    assert snapshot(seat) == before


def test_a_code_redeemed_by_other_than_its_assignee_opens_a_case_and_changes_nothing(assigned):
    before = snapshot(assigned)
    event = deliver(entitlement_redeemed(assigned.code, user_email="bob@acme.com"), "msg_4")
    case = the_case()
    assert (
        case.customer,
        case.subject,
        case.summary,
        case.expected,
        case.found,
        case.dedupe_key,
    ) == (
        assigned.customer,
        assigned,
        f"Code {assigned.code} redeemed by bob@acme.com: not the assignee",
        "redeemed by the assignee ann@acme.com",
        "redeemed by bob@acme.com on 21 Nov 2026 09:30",
        f"problem_redemption:entitlement:{assigned.code}:bob@acme.com",
    )
    assert_refused(event, case, assigned.code, "not the assignee")
    assert snapshot(assigned) == before
    [opened] = case.history.all()
    assert (opened.history_type, opened.history_actor) == ("+", "webhook:msg_4")


def test_the_same_problem_twice_is_one_case_with_the_latest_finding(assigned):
    deliver(entitlement_redeemed(assigned.code, user_email="bob@acme.com"), "msg_1")
    second = deliver(
        entitlement_redeemed(
            assigned.code, user_email="bob@acme.com", redeemed_at="2026-11-22T10:00:00Z"
        ),
        "msg_2",
    )
    case = the_case()
    assert case.found == "redeemed by bob@acme.com on 22 Nov 2026 10:00"
    assert second.warning == (
        f"redemption of {assigned.code} not recorded: case #{case.pk} (not the assignee)"
    )
    changed, opened = case.history.order_by("-history_id")
    assert (opened.history_actor, opened.found) == (
        "webhook:msg_1",
        "redeemed by bob@acme.com on 21 Nov 2026 09:30",
    )
    assert (changed.history_actor, changed.history_change_reason) == (
        "webhook:msg_2",
        "the problem was raised again",
    )
    deliver(entitlement_redeemed(assigned.code, user_email="bob@acme.com"), "msg_3")
    deliver(entitlement_redeemed("ZZZZ-ZZZZ-ZZZZ"), "msg_4")
    deliver(entitlement_redeemed("zzzz-zzzz-zzzz"), "msg_5")
    assert sorted(Case.objects.values_list("dedupe_key", flat=True)) == [
        "problem_redemption:code:ZZZZ-ZZZZ-ZZZZ",
        f"problem_redemption:entitlement:{assigned.code}:bob@acme.com",
    ]


def test_a_closed_case_is_not_rewritten_by_the_same_problem(assigned):
    deliver(entitlement_redeemed(assigned.code, user_email="bob@acme.com"), "msg_1")
    case = the_case()
    with acting_as("test:fixture"):
        case.state = Case.State.WAIVED
        case.closed_at = REDEEMED_AT
        case.closing_note = "bob is ann's delegate"
        case.save()
    deliver(
        entitlement_redeemed(
            assigned.code, user_email="bob@acme.com", redeemed_at="2026-11-22T10:00:00Z"
        ),
        "msg_2",
    )
    case.refresh_from_db()
    assert (case.state, case.found, case.history.count()) == (
        "waived",
        "redeemed by bob@acme.com on 21 Nov 2026 09:30",
        2,
    )


def test_a_reissued_seats_old_code_is_unknown_and_its_new_code_redeems(seat):
    old = seat.code
    with acting_as("test:fixture"):
        entitlement_reissue_code(entitlement=seat, reason="code leaked")
    seat.refresh_from_db()
    event = deliver(entitlement_redeemed(old), "msg_1")
    case = the_case()
    assert (case.subject, case.dedupe_key) == (None, f"problem_redemption:code:{old}")
    assert_refused(event, case, old, "the code is unknown")
    assert seat.state == "issued"
    deliver(entitlement_redeemed(seat.code), "msg_2")
    seat.refresh_from_db()
    assert (seat.state, seat.redeemed_by_email) == ("redeemed", "ann@acme.com")


def test_an_unknown_code_from_an_unknown_tenant_opens_a_case_without_a_customer(db):
    event = deliver(entitlement_redeemed("ABCD-EFGH-JKMN", tenant_id="nobody-0000"))
    case = the_case()
    assert (case.customer, case.expected) == (None, "a code issued to nobody-0000")
    assert_refused(event, case, "ABCD-EFGH-JKMN", "the code is unknown")
