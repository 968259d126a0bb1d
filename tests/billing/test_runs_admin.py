"""Reconciliation runs in the admin, per role: the run list and a run's page (progress
while it runs, then what it found, linked to the inbox), starting a run of a month, and
the Celery tasks that run them."""

import datetime as dt
import re

import pytest
import time_machine
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from audit.context import acting_as
from billing import tasks
from billing.models import ReconciliationRun
from billing.reconciliation import ReconciliationBusy, reconciliation_run
from support.models import Case
from tests.billing.crafted import OCTOBER, TODAY, customer, invoice, month
from tests.personas import PASSWORD
from tests.records import active_contract

pytestmark = pytest.mark.django_db

__all__ = ["month"]  # the crafted month, as a fixture here

CHANGELIST = reverse("admin:billing_reconciliationrun_changelist")
START = reverse("admin:billing_reconciliationrun_start")
INBOX = reverse("admin:support_case_inbox")
LIST_REFRESH = '<meta http-equiv="refresh" content="3">'
PAGE_REFRESH = '<meta http-equiv="refresh" content="2">'
# 22 Nov 2026, the morning after TODAY: last month is October.
NOW = dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.UTC)


def run_page(run: ReconciliationRun) -> str:
    return reverse("admin:billing_reconciliationrun_change", args=[run.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def html(response) -> str:
    return response.content.decode()


def make_run(month: dt.date = OCTOBER, **fields) -> ReconciliationRun:
    values = {"month": month, "stage": "comparing", "progress": 5, "started_by": "olga"}
    with acting_as("test:fixture"):
        return ReconciliationRun.objects.create(**{**values, **fields})


@pytest.fixture
def finished(month) -> ReconciliationRun:
    """The crafted October, reconciled: 11 findings of all six kinds."""
    with acting_as("test:reconcile"):
        return reconciliation_run(month=OCTOBER, today=TODAY)


@pytest.fixture
def nobody(db) -> User:
    """Staff, but in no group: sees no runs."""
    return User.objects.create_user(username="nina", password=PASSWORD, is_staff=True)


# --- Who sees what ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "manager", "ops_lead", "superuser"])
def test_every_role_sees_the_run_list_and_a_run_page(client, request, role, finished):
    client.force_login(request.getfixturevalue(role))
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert [run.pk for run in listing.context["cl"].result_list] == [finished.pk]
    page = client.get(run_page(finished))
    assert page.status_code == 200
    assert 'data-testid="run-findings"' in html(page)
    # Only who may start a run is offered it.
    may_start = role in {"ops_lead", "superuser"}
    assert (START in html(listing)) is may_start


def test_outsiders_see_no_runs(client, outsider, nobody, finished):
    client.force_login(outsider)  # not staff: sent to sign in
    for url in (CHANGELIST, run_page(finished), START):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
    client.force_login(nobody)  # staff without the permission
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(run_page(finished)).status_code == 403
    assert client.get(START).status_code == 403


def test_the_list_shows_each_run_newest_first(client, ops_lead, finished, month):
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=1), tick=False):
        make_run(
            dt.date(2026, 9, 1),
            customer=month["Missing"],
            status="failed",
            error="RuntimeError: disk full",
            finished_at=timezone.now() + dt.timedelta(seconds=3),
        )
    client.force_login(ops_lead)
    response = client.get(CHANGELIST)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html(response), re.DOTALL)[1:]
    text = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip() for row in rows]
    assert len(text) == 2
    assert text[0].startswith("2026-09 Missing Failed 5% none 0 0 3.0 s olga")
    assert text[1].startswith(
        "2026-10 every customer Succeeded 100% 2 amount mismatch, 1 currency mismatch, "
        "1 duplicate invoice, 3 invoice without contract, 3 missing invoice, "
        "1 overdue invoice 11 0 "
    )
    assert "test:reconcile" in text[1]


def test_the_list_costs_the_same_for_2_runs_and_12(client, ops_lead, django_assert_num_queries):
    client.force_login(ops_lead)
    who = customer("Acme")
    for number in range(2):
        make_run(dt.date(2025, number + 1, 1), customer=who, status="succeeded")
    client.get(CHANGELIST)  # warm per-process caches
    with django_assert_num_queries(7):
        assert len(client.get(CHANGELIST).context["cl"].result_list) == 2
    for number in range(10):
        make_run(dt.date(2024, number + 1, 1), customer=who, status="succeeded")
    with django_assert_num_queries(7):
        assert len(client.get(CHANGELIST).context["cl"].result_list) == 12


# --- A run's page -------------------------------------------------------------------------


def test_a_finished_run_shows_its_counts_linked_to_the_inbox_by_kind_and_month(
    client, ops_lead, finished
):
    client.force_login(ops_lead)
    page = html(client.get(run_page(finished)))
    table = page.split('data-testid="run-findings"')[1].split("</table>")[0]
    rows = re.findall(
        r"<tr><td>([^<]+)</td><td class=\"num\">(\d+)</td><td>(?:<a href=\"([^\"]+)\">)?",
        table,
    )
    assert rows == [
        (
            label,
            str(count),
            f"{INBOX}?state=all&amp;kind={kind}&amp;month=2026-10",
        )
        for kind, label, count in [
            ("missing_invoice", "Missing invoice", 3),
            ("amount_mismatch", "Amount mismatch", 2),
            ("invoice_without_contract", "Invoice without active contract", 3),
            ("currency_mismatch", "Currency differs from contract", 1),
            ("duplicate_invoice", "Duplicate invoices", 1),
            ("overdue_invoice", "Overdue invoice", 1),
        ]
    ]
    assert "Cases opened 11 · updated 0 · resolved as fixed 0" in page
    assert 'aria-valuenow="100"' in page and "100% · done" in page
    assert PAGE_REFRESH not in page and "od-error" not in page


def test_a_kind_link_lists_exactly_that_kind_of_the_month(client, ops_lead, finished, month):
    # A September finding of the same kind stays out.
    invoice(month["Missing"], "300.00", period_start=dt.date(2026, 9, 1))
    with acting_as("test:reconcile"):
        reconciliation_run(month=dt.date(2026, 9, 1), today=TODAY)
    assert Case.objects.filter(kind="amount_mismatch", period=dt.date(2026, 9, 1)).exists()
    client.force_login(ops_lead)
    link = f"{INBOX}?state=all&kind=amount_mismatch&month=2026-10"
    assert link.replace("&", "&amp;") in html(client.get(run_page(finished)))
    listed = [case for case, *_ in client.get(link).context["rows"]]
    assert sorted(case.customer.name for case in listed) == ["Over tolerance", "Small over"]
    assert {(case.kind, case.period) for case in listed} == {("amount_mismatch", OCTOBER)}


def test_a_re_check_runs_links_list_only_its_customers_findings(client, ops_lead, finished, month):
    who = month["Over tolerance"]
    with acting_as("test:reconcile"):
        recheck = reconciliation_run(month=OCTOBER, customer=who, today=TODAY)
    assert recheck.findings == {"amount_mismatch": 1}
    client.force_login(ops_lead)
    page = html(client.get(run_page(recheck)))
    assert "re-check of Over tolerance" in page
    link = f"{INBOX}?state=all&kind=amount_mismatch&month=2026-10&customer=over-tolerance"
    assert f'<a href="{link.replace("&", "&amp;")}">in the inbox →</a>' in page
    assert page.count("in the inbox →") == 1
    listed = [case for case, *_ in client.get(link).context["rows"]]
    assert [(case.kind, case.customer) for case in listed] == [("amount_mismatch", who)]


def test_a_kind_without_findings_has_no_link(client, ops_lead):
    who = customer("Quiet")
    active_contract(who)
    invoice(who, "500.00")
    with acting_as("test:reconcile"):
        run = reconciliation_run(month=OCTOBER, today=TODAY)
    assert run.findings == {}
    client.force_login(ops_lead)
    page = html(client.get(run_page(run)))
    assert "in the inbox" not in page
    assert '<tr><td>Missing invoice</td><td class="num">0</td><td></td></tr>' in page


def test_a_running_run_refreshes_its_page_and_the_list_until_it_finishes(client, agent):
    running = make_run(stage="writing findings", progress=60)
    client.force_login(agent)
    page = html(client.get(run_page(running)))
    assert PAGE_REFRESH in page
    assert 'aria-valuenow="60"' in page and "width: 60%" in page
    assert "60% · writing findings" in page
    assert 'data-testid="run-findings"' not in page  # nothing to count yet
    assert LIST_REFRESH in html(client.get(CHANGELIST))

    with acting_as("test:fixture"):
        running.status, running.progress, running.stage = "succeeded", 100, "done"
        running.finished_at = timezone.now()
        running.save()
    assert PAGE_REFRESH not in html(client.get(run_page(running)))
    assert LIST_REFRESH not in html(client.get(CHANGELIST))


def test_a_failed_run_shows_its_error(client, manager):
    failed = make_run(status="failed", error="RuntimeError: disk full", finished_at=timezone.now())
    client.force_login(manager)
    page = html(client.get(run_page(failed)))
    assert '<p class="od-error">RuntimeError: disk full</p>' in page
    assert "od-progress-failed" in page
    assert PAGE_REFRESH not in page and 'data-testid="run-findings"' not in page


def test_a_run_cannot_be_changed_or_deleted_by_anyone(client, ops_lead, superuser, finished):
    before = list(ReconciliationRun.objects.values())
    history = finished.history.count()
    for user in (ops_lead, superuser):
        client.force_login(user)
        post = client.post(run_page(finished), {"month": "2026-09-01", "status": "failed"})
        assert post.status_code == 403
        delete = reverse("admin:billing_reconciliationrun_delete", args=[finished.pk])
        assert client.get(delete).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
        changelist = client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": [finished.pk]}
        )
        assert "delete_selected" not in html(client.get(CHANGELIST))
        assert changelist.status_code in {200, 302}
    assert list(ReconciliationRun.objects.values()) == before
    assert finished.history.count() == history


# --- Starting a run -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "preselected"),
    [(NOW, "2026-10"), (dt.datetime(2027, 1, 1, 0, 5, tzinfo=dt.UTC), "2026-12")],
)
def test_the_start_form_preselects_last_month(client, ops_lead, now, preselected):
    with time_machine.travel(now, tick=False):
        client.force_login(ops_lead)
        response = client.get(START)
        # "Add" leads here.
        add = client.get(reverse("admin:billing_reconciliationrun_add"))
    assert (add.status_code, add.url) == (302, START)
    assert response.status_code == 200
    assert response.context["form"]["month"].value() == preselected
    assert f'type="month" name="month" value="{preselected}"' in html(response)


def test_starting_a_month_queues_one_run_for_the_workers(client, ops_lead, publish):
    with time_machine.travel(NOW, tick=False):
        client.force_login(ops_lead)
        response = publish.post(client, {"month": "2026-10"})
    assert response.status_code == 302 and response.url == CHANGELIST
    assert messages_of(response) == [
        "Reconciliation of 2026-10 queued: it appears below within seconds."
    ]
    # The month, no one customer, who asked and when (billing.tasks.reconciliation_run).
    assert publish() == [
        ("billing.reconciliation_run", ["2026-10-01", None, ops_lead.pk, NOW.isoformat()])
    ]
    assert not ReconciliationRun.objects.exists()  # the worker makes the run


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("2026-13", "&#x27;2026-13&#x27; is not a month like 2026-10."),
        ("October", "&#x27;October&#x27; is not a month like 2026-10."),
        ("", "This field is required."),
    ],
)
def test_a_month_that_is_not_one_queues_nothing(client, ops_lead, publish, value, error):
    client.force_login(ops_lead)
    response = publish.post(client, {"month": value})
    assert response.status_code == 200
    assert error in html(response)
    assert response.context["form"].errors["month"]
    assert publish() == [] and messages_of(response) == []


@pytest.mark.parametrize("role", ["agent", "manager"])
def test_only_ops_leads_start_runs(client, request, role, publish):
    client.force_login(request.getfixturevalue(role))
    assert client.get(START).status_code == 403
    assert publish.post(client, {"month": "2026-10"}).status_code == 403
    assert publish() == []


# --- The tasks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "months"),
    [
        (NOW, ["2026-10-01", "2026-11-01"]),
        (dt.datetime(2027, 1, 1, 3, 0, tzinfo=dt.UTC), ["2026-12-01", "2027-01-01"]),
    ],
)
def test_beat_reconciles_the_previous_and_the_current_month(monkeypatch, now, months):
    queued = []
    monkeypatch.setattr(tasks.reconciliation_run, "delay", lambda *args: queued.append(args))
    with time_machine.travel(now, tick=False):
        assert tasks.reconciliation_run_recent() == months
    assert queued == [(month,) for month in months]


def test_beat_schedules_it_once_a_day(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["reconcile-billing"]
    assert entry["task"] == "billing.reconciliation_run_recent"
    assert (entry["schedule"].hour, entry["schedule"].minute) == ({5}, {30})
    assert entry["schedule"].day_of_month == set(range(1, 32))


def test_the_task_reconciles_the_month_and_returns_the_run(month):
    with acting_as("task:reconciliation_run"):
        run_id = tasks.reconciliation_run("2026-10-15")
    run = ReconciliationRun.objects.get()
    assert run_id == run.pk
    assert (run.month, run.customer, run.status) == (OCTOBER, None, "succeeded")
    assert run.started_by == "task:reconciliation_run"
    assert Case.objects.filter(period=OCTOBER).count() == run.opened > 0


def test_the_task_reconciles_one_customer(month):
    who = month["Over tolerance"]
    run = ReconciliationRun.objects.get(pk=tasks.reconciliation_run("2026-10-01", who.pk))
    assert (run.customer, run.customers_checked) == (who, 1)
    assert set(Case.objects.values_list("customer", flat=True)) == {who.pk}


def test_the_task_waits_while_another_run_of_the_month_writes(month):
    running = make_run()
    with pytest.raises(ReconciliationBusy, match=f"run #{running.pk}"):
        tasks.reconciliation_run("2026-10-01")
    assert list(ReconciliationRun.objects.all()) == [running] and not Case.objects.exists()
    # ... and Celery tries again later rather than giving up.
    assert tasks.reconciliation_run.autoretry_for == (ReconciliationBusy,)
    assert tasks.reconciliation_run.max_retries == 8
    assert tasks.reconciliation_run.retry_backoff == 60
