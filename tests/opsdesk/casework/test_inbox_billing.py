"""Billing findings in the ops inbox: the month filter, and "Re-check now" on a billing
case's page, which reconciles its customer and month at once."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from audit.context import acting_as
from billing.models import Invoice, ReconciliationRun
from billing.reconciliation import reconciliation_run
from support.models import Case
from tests.billing.crafted import OCTOBER, TODAY, month
from tests.opsdesk.casework.cases import INBOX, case_url, make_case, shown
from tests.pages import messages_of

pytestmark = pytest.mark.django_db

__all__ = ["month"]  # the crafted month, as a fixture here

SEPTEMBER, NOVEMBER = dt.date(2026, 9, 1), dt.date(2026, 11, 1)
D = Decimal
CASE_FIELDS = [
    "kind",
    "customer_id",
    "period",
    "state",
    "owner_id",
    "acknowledged_at",
    "closed_at",
    "closing_note",
    "summary",
    "expected",
    "found",
    "expected_amount",
    "found_amount",
    "dedupe_key",
    "details",
]


def recheck_url(case: Case) -> str:
    return reverse("admin:support_case_recheck", args=[case.pk])


def stored(case: Case) -> dict:
    return Case.objects.values(*CASE_FIELDS).get(pk=case.pk)


def everything() -> tuple:
    """Every case and run as stored, with their history counts."""
    return (
        list(Case.objects.order_by("pk").values("pk", *CASE_FIELDS)),
        list(ReconciliationRun.objects.order_by("pk").values()),
        Case.history.count(),
        ReconciliationRun.history.count(),
    )


# --- The month filter ---------------------------------------------------------------------


@pytest.fixture
def findings(customer):
    """Billing findings of three months, a closed one, and a case of another app."""
    billing = {"customer": customer}
    make_case("oct mismatch", days_old=3, kind="amount_mismatch", period=OCTOBER, **billing)
    make_case("oct missing", days_old=2, kind="missing_invoice", period=OCTOBER, **billing)
    make_case(
        "oct mismatch fixed", days_old=5, kind="amount_mismatch", period=OCTOBER,
        state=Case.State.RESOLVED, **billing,
    )  # fmt: skip
    make_case("sep mismatch", days_old=4, kind="amount_mismatch", period=SEPTEMBER, **billing)
    make_case("nov missing", days_old=1, kind="missing_invoice", period=NOVEMBER, **billing)
    make_case("failed order", days_old=6, customer=customer)


def test_the_month_filter_lists_exactly_that_months_billing_findings(client, ops_lead, findings):
    client.force_login(ops_lead)
    assert shown(client.get(INBOX, {"month": "2026-10"})) == ["oct mismatch", "oct missing"]
    assert shown(client.get(INBOX, {"month": "2026-10", "state": "all"})) == [
        "oct mismatch fixed",
        "oct mismatch",
        "oct missing",
    ]
    assert shown(client.get(INBOX, {"month": "2026-11"})) == ["nov missing"]
    assert shown(client.get(INBOX, {"month": "2026-08"})) == []
    # No month: every case being worked, other apps' too.
    assert shown(client.get(INBOX, {"month": ""})) == [
        "failed order",
        "sep mismatch",
        "oct mismatch",
        "oct missing",
        "nov missing",
    ]


def test_the_month_filter_combines_with_kind_and_keeps_its_value(client, agent, findings):
    client.force_login(agent)  # Support reads the inbox too
    response = client.get(INBOX, {"month": "2026-10", "kind": "amount_mismatch"})
    assert shown(response) == ["oct mismatch"]
    assert shown(
        client.get(INBOX, {"month": "2026-10", "kind": "amount_mismatch", "state": "all"})
    ) == ["oct mismatch fixed", "oct mismatch"]
    assert shown(client.get(INBOX, {"month": "2026-09", "kind": "missing_invoice"})) == []
    assert 'type="month" name="month" value="2026-10"' in response.content.decode()


@pytest.mark.parametrize("value", ["bad", "2026-13", "10/2026"])
def test_a_month_that_is_not_one_says_so_and_lists_nothing(client, ops_lead, findings, value):
    client.force_login(ops_lead)
    response = client.get(INBOX, {"month": value})
    assert response.status_code == 200
    assert shown(response) == []
    assert messages_of(response) == [
        "Some filters were not understood, so nothing is listed: "
        f"month: '{value}' is not a month like 2026-10."
    ]


def test_the_filtered_inbox_costs_the_same_for_2_findings_and_20(
    client, ops_lead, customer, django_assert_num_queries
):
    client.force_login(ops_lead)

    def add(n: int, start: int) -> None:
        for number in range(start, start + n):
            make_case(
                f"finding {number}", kind="missing_invoice", period=OCTOBER, customer=customer
            )

    add(2, 0)
    client.get(INBOX, {"month": "2026-10"})  # warm per-process caches
    # 7, and the person's saved views of the inbox (opsdesk.saved_views).
    with django_assert_num_queries(8):
        assert len(shown(client.get(INBOX, {"month": "2026-10"}))) == 2
    add(18, 2)
    with django_assert_num_queries(8):
        assert len(shown(client.get(INBOX, {"month": "2026-10"}))) == 20


# --- Re-check now -------------------------------------------------------------------------


@pytest.fixture
def reconciled(month):
    """The crafted October, reconciled the day after TODAY's morning; the re-checks
    happen on TODAY too, so what is overdue stays the same."""
    with time_machine.travel(dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC), tick=True):
        with acting_as("task:reconciliation_run"):
            run = reconciliation_run(month=OCTOBER, today=TODAY)
        yield run


def finding(kind: str, who) -> Case:
    return Case.objects.get(kind=kind, customer=who)


def set_amount(who, amount: str) -> None:
    with acting_as("test:billing-fix"):
        wrong = Invoice.objects.get(customer=who)
        wrong.amount_due = wrong.amount_paid = D(amount)
        wrong.save()


def test_re_check_resolves_a_case_whose_invoice_was_corrected(client, ops_lead, month, reconciled):
    case = finding("amount_mismatch", month["Over tolerance"])
    other = finding("missing_invoice", month["Only void"])
    set_amount(month["Over tolerance"], "500.00")
    with acting_as("test:billing-fix"):  # fixed too, but not re-checked
        voided = Invoice.objects.get(customer=month["Only void"])
        voided.status = "paid"
        voided.save()
    client.force_login(ops_lead)

    response = client.post(recheck_url(case))

    run = ReconciliationRun.objects.latest("pk")
    assert (response.status_code, response.url) == (302, case_url(case))
    assert messages_of(response) == [f"Re-checked (run #{run.pk}): fixed, so the case is resolved."]
    assert (run.month, run.customer, run.status, run.started_by) == (
        OCTOBER,
        month["Over tolerance"],
        "succeeded",
        "olga",
    )
    assert (run.customers_checked, run.opened, run.updated, run.resolved) == (1, 0, 0, 1)
    case.refresh_from_db()
    assert case.state == Case.State.RESOLVED and case.closed_at is not None
    assert case.closing_note.startswith(f"No longer found by reconciliation run #{run.pk} on ")
    latest = case.history.first()
    assert (latest.history_type, latest.history_actor, latest.history_change_reason) == (
        "~",
        "olga",
        f"no longer found by reconciliation run #{run.pk}",
    )
    assert latest.history_user == ops_lead
    assert other.history.count() == 1 and finding("missing_invoice", month["Only void"]).state == (
        "open"
    )
    # The page now shows it resolved and no longer offers a re-check.
    page = client.get(case_url(case)).content.decode()
    assert "Re-check now" not in page and 'class="od-pill od-resolved">Resolved' in page


def test_re_check_of_a_problem_still_there_only_updates_its_amounts(
    client, ops_lead, month, reconciled
):
    case = finding("amount_mismatch", month["Small over"])
    with acting_as("olga", user=ops_lead):
        case.owner = ops_lead
        case.state = Case.State.ACKNOWLEDGED
        case.acknowledged_at = reconciled.finished_at
        case.save()
    before = stored(case)
    history = case.history.count()
    set_amount(month["Small over"], "90.00")
    client.force_login(ops_lead)

    response = client.post(recheck_url(case))

    run = ReconciliationRun.objects.latest("pk")
    assert messages_of(response) == [
        f"Re-checked (run #{run.pk}): still found. Expected 100.00, found 90.00."
    ]
    assert (run.opened, run.updated, run.resolved) == (0, 1, 0)
    after = stored(case)
    amounts = {"summary", "found_amount"}  # found: "on OPS-6" either way
    assert {name for name in CASE_FIELDS if after[name] != before[name]} == amounts
    assert (after["found_amount"], after["found"]) == (D("90.00"), "on OPS-6")
    assert (
        after["summary"] == "Small over: invoice OPS-6 is 10.00 EUR below what 2026-10 should cost"
    )
    assert case.history.count() == history + 1
    latest = case.history.first()
    assert (latest.history_actor, latest.history_change_reason, latest.history_for) == (
        "olga",
        f"amounts updated by reconciliation run #{run.pk}",
        f"support.case:{case.pk}",
    )


def test_re_check_of_an_unchanged_problem_changes_nothing(client, ops_lead, month, reconciled):
    case = finding("duplicate_invoice", month["Twice"])
    before = everything()
    client.force_login(ops_lead)
    response = client.post(recheck_url(case))
    run = ReconciliationRun.objects.latest("pk")
    assert run.pk != reconciled.pk and run.customer == month["Twice"]
    assert messages_of(response) == [
        f"Re-checked (run #{run.pk}): still found. Expected 500.00, found 1000.00."
    ]
    cases, runs, case_history, _ = everything()
    assert (cases, case_history) == (before[0], before[2])
    assert runs[:-1] == before[1]
    assert (run.opened, run.updated, run.resolved) == (0, 0, 0)


def test_only_billing_findings_of_a_known_customer_are_re_checked(
    client, ops_lead, customer, month, reconciled
):
    failed_order = make_case("failed order", customer=customer)
    ghost = Case.objects.get(kind="invoice_without_contract", customer=None)
    assert ghost.details["tenant_id"] == "ghost-9"
    before = everything()
    client.force_login(ops_lead)
    for case in (failed_order, ghost):
        response = client.post(recheck_url(case))
        assert (response.status_code, response.url) == (302, case_url(case))
        assert messages_of(response) == [
            "Only billing findings of a known customer can be re-checked."
        ]
        assert "Re-check now" not in client.get(case_url(case)).content.decode()
    assert everything() == before


def test_a_closed_case_is_not_re_checked(client, ops_lead, month, reconciled):
    from support.cases import case_close

    case = finding("amount_mismatch", month["Over tolerance"])
    case_close(case=case, state="waived", note="Agreed discount", by=ops_lead)
    before = everything()
    client.force_login(ops_lead)
    response = client.post(recheck_url(case))
    assert (response.status_code, response.url) == (302, case_url(case))
    assert messages_of(response) == [f"Case #{case.pk} was not re-checked: it is waived already."]
    assert everything() == before


@pytest.mark.parametrize("role", ["agent", "manager"])
def test_only_who_works_cases_re_checks(client, request, role, month, reconciled):
    case = finding("amount_mismatch", month["Over tolerance"])
    set_amount(month["Over tolerance"], "500.00")
    before = everything()
    client.force_login(request.getfixturevalue(role))
    assert client.post(recheck_url(case)).status_code == 403
    assert everything() == before
    page = client.get(case_url(case))
    assert page.status_code == 200 and "Re-check now" not in page.content.decode()


def test_re_check_is_a_post(client, ops_lead, month, reconciled):
    case = finding("amount_mismatch", month["Over tolerance"])
    client.force_login(ops_lead)
    before = everything()
    assert client.get(recheck_url(case)).status_code == 405
    assert everything() == before
    page = client.get(case_url(case)).content.decode()
    assert f'action="{recheck_url(case)}"' in page and "Re-check now</button>" in page


def test_re_check_waits_for_a_run_of_the_month_in_progress(client, ops_lead, month, reconciled):
    case = finding("amount_mismatch", month["Over tolerance"])
    set_amount(month["Over tolerance"], "500.00")
    with acting_as("task:reconciliation_run"):
        running = ReconciliationRun.objects.create(
            month=OCTOBER, started_by="task:reconciliation_run"
        )
    before = everything()
    client.force_login(ops_lead)
    response = client.post(recheck_url(case))
    assert (response.status_code, response.url) == (302, case_url(case))
    assert messages_of(response) == [
        f"Not re-checked now. A reconciliation of 2026-10 is running (run #{running.pk}, "
        "started by task:reconciliation_run); try again when it has finished."
    ]
    assert everything() == before
    assert finding("amount_mismatch", month["Over tolerance"]).state == "open"
