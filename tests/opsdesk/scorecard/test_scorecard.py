"""The operations scorecard (opsdesk.scorecard, docs/product.md#scorecard): every figure per
week, read from history as it stood at a moment, drillable to its rows.

Records are written at fixed times (time_machine), each change by the actor production
would name (a person, ``task:`` for a reconciliation run), so their history is what
production writes. Every figure is checked against a hand-written SQL query over the
history tables (``HAND_SQL``) and the main ones against numbers worked out by hand.
2 November 2026 is a Monday; the scorecard as of Friday 13 November shows the weeks of
2 and 9 November."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from audit.context import acting_as, acting_as_user
from billing.models import ReconciliationRun
from billing.reconciliation import BILLING_KINDS
from customers.models import Customer
from kit import roles
from onboarding.models import Checklist
from opsdesk.audit_log.selectors import audited_models
from opsdesk.scorecard import selectors
from support import reporting, tickets
from support.models import Case
from tests import builders
from tests.personas import staff_user

pytestmark = pytest.mark.django_db

UTC = dt.UTC
PAGE = "/admin/scorecard/"
ROWS = "/admin/scorecard/rows/"
WEEK1, WEEK2 = dt.date(2026, 11, 2), dt.date(2026, 11, 9)
HOUR, DAY = 3600.0, 86400.0


def at(month: int, day: int, hour: int = 9, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def on(when: dt.datetime):
    return time_machine.travel(when, tick=False)


def as_of(day: int, weeks: int = 2) -> reporting.ReportFilter:
    return reporting.ReportFilter(
        moment=reporting.report_moment(dt.date(2026, 11, day), now=at(11, 20)), weeks=weeks
    )


# --- the world ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def granted(db):
    """The groups as kit.roles grants them today (the scorecard's permission included)."""
    staff_user("nobody-yet")  # makes the groups exist
    roles.roles_sync()


def _checklist(customer, activated, completed=None) -> Checklist:
    with on(activated), acting_as("task:onboarding_generate"):
        checklist = Checklist.objects.create(
            contract=builders.contract(customer=customer), customer=customer, activated_at=activated
        )
    if completed:
        _complete(checklist, completed)
    return checklist


def _complete(checklist, when) -> None:
    with on(when), acting_as("task:onboarding_sync"):
        checklist.completed_at = when
        checklist.save()


def _case(when, actor="webhook:evt", **fields) -> Case:
    with on(when), acting_as(actor):
        return builders.case(opened_at=when, **fields)


def _change(case, when, by=None, **fields) -> None:
    """A change to ``case`` at ``when``, by a person (``by``) or a reconciliation run."""
    actor = acting_as_user(by) if by else acting_as("task:reconcile_month")
    with on(when), actor:
        for name, value in fields.items():
            setattr(case, name, value)
        if fields.get("state") in Case.CLOSED_STATES:
            case.closed_at, case.closing_note = when, "closed"
        case.save()


def _run(month: dt.date, when: dt.datetime, customer=None, status="succeeded") -> None:
    """A reconciliation run of ``month`` (every customer, or a re-check of ``customer``)
    started at ``when`` and finished five minutes later, as its task records it."""
    with on(when), acting_as("task:reconcile_month"):
        run = ReconciliationRun.objects.create(month=month, customer=customer, started_at=when)
    done = when + dt.timedelta(minutes=5)
    with on(done), acting_as("task:reconcile_month"):
        run.status, run.finished_at, run.progress = status, done, 100
        run.save()


@pytest.fixture
def world(agent, manager, ops_lead, superuser, sla_policies):
    """Two weeks of operations (see each block), written at the times they happened."""
    with on(at(10, 1)), acting_as("test:fixture"):
        acme = builders.customer(name="Acme")
        globex = builders.customer(name="Globex")
    # Onboarding: two done in the week of 2 Nov (14 d, 5 d 6 h), one in the week of 9 Nov
    # (8 d), one done only on 16 Nov.
    _checklist(acme, at(10, 20, 10), at(11, 3, 10))
    _checklist(globex, at(10, 30, 10), at(11, 4, 16))
    _checklist(acme, at(11, 2, 9), at(11, 10, 9))
    _checklist(globex, at(11, 1, 9), None)
    # Exceptions: K1 opened 2 Nov, resolved by Olga 3 Nov (24 h); K2 opened 4 Nov, waived by
    # Olga 10 Nov (6 d); K3 opened 11 Nov, open; K4 opened 28 Oct, resolved 9 Nov 14:00.
    k1 = _case(at(11, 2, 9), summary="K1", customer=acme)
    _change(k1, at(11, 3, 9), ops_lead, state=Case.State.RESOLVED)
    k2 = _case(at(11, 4, 12), summary="K2")
    _change(k2, at(11, 10, 12), ops_lead, state=Case.State.WAIVED)
    _case(at(11, 11, 8), summary="K3")
    k4 = _case(at(10, 28, 10), summary="K4")
    _change(k4, at(11, 9, 14), ops_lead, state=Case.State.RESOLVED)
    # Billing findings, raised and resolved by runs unless a person says otherwise:
    # Acme October settled 3 Nov untouched; Globex October (two findings, one
    # acknowledged by Olga) settled 10 Nov; Acme September settled 11 Nov untouched;
    # Acme November still open.
    run = "task:reconcile_month"
    b1 = _case(at(11, 1, 6), run, kind=Case.Kind.MISSING_INVOICE, summary="B1", customer=acme,
               period=dt.date(2026, 10, 1))  # fmt: skip
    _change(b1, at(11, 3, 6), state=Case.State.RESOLVED)
    b2 = _case(at(11, 1, 6), run, kind=Case.Kind.AMOUNT_MISMATCH, summary="B2", customer=globex,
               period=dt.date(2026, 10, 1))  # fmt: skip
    _change(b2, at(11, 2, 10), ops_lead, state=Case.State.ACKNOWLEDGED)
    _change(b2, at(11, 4, 6), state=Case.State.RESOLVED)
    b3 = _case(at(11, 1, 6), run, kind=Case.Kind.OVERDUE_INVOICE, summary="B3", customer=globex,
               period=dt.date(2026, 10, 1))  # fmt: skip
    _change(b3, at(11, 10, 6), state=Case.State.RESOLVED)
    b4 = _case(at(11, 1, 6), run, kind=Case.Kind.MISSING_INVOICE, summary="B4", customer=acme,
               period=dt.date(2026, 9, 1))  # fmt: skip
    _change(b4, at(11, 11, 6), state=Case.State.RESOLVED)
    b5 = _case(at(11, 11, 6), run, kind=Case.Kind.MISSING_INVOICE, summary="B5", customer=acme,
               period=dt.date(2026, 11, 1))  # fmt: skip
    # The runs: a month is reconciled by the first that ran once its invoices were due
    # (5 grace days after it ended). October's on 1 Nov found B1-B3 but came too early;
    # October's of 6 Nov reconciled Acme's and Globex's October (both have contracts
    # active since January): Acme's settled untouched, Globex's touched by Olga. A
    # re-check of Globex's October on 12 Nov changes nothing. September's failed on
    # 9 Nov; September's of 10 Nov reconciled Acme's (B4, resolved by a run on 11 Nov)
    # and Globex's (no finding). November's of 11 Nov is not a month's last word.
    _run(dt.date(2026, 10, 1), at(11, 1, 5, 55))
    _run(dt.date(2026, 10, 1), at(11, 6, 5, 30))
    _run(dt.date(2026, 10, 1), at(11, 12, 9), customer=globex)
    _run(dt.date(2026, 9, 1), at(11, 9, 5, 30), status="failed")
    _run(dt.date(2026, 9, 1), at(11, 10, 5, 30))
    _run(dt.date(2026, 11, 1), at(11, 11, 5, 55))
    # Support: Sam opens a ticket 3 Nov 09:00 and answers at 09:30; one 10 Nov answered
    # at 12:00.
    for opened, answered in [(at(11, 3, 9), at(11, 3, 9, 30)), (at(11, 10, 9), at(11, 10, 12))]:
        # In a request the middleware names the person; here the test does.
        with on(opened), acting_as_user(agent):
            ticket = tickets.ticket_create(
                by=agent, subject="Help", requester_email="pat@example.com", customer=acme
            )
        with on(answered), acting_as_user(agent):
            tickets.ticket_comment(ticket=ticket, author=agent, kind="reply", body="On it.")
    # Alice renames Globex on 5 Nov; root (no role group) renames it back on 12 Nov.
    for who, when, name in [
        (manager, at(11, 5, 11), "Globex Corp"),
        (superuser, at(11, 12, 11), "Globex"),
    ]:
        with on(when), acting_as_user(who):
            globex.name = name
            globex.save()
    return {"acme": acme, "globex": globex, "k1": k1, "k3": Case.objects.get(summary="K3"),
            "b5": b5}  # fmt: skip


# --- the hand-written SQL -----------------------------------------------------------------

# Each figure per week, written independently of the selectors: a record's version as of
# the moment is the one with the highest history_id recorded before it.
HAND_SQL = {
    "onboarding": """
        SELECT date_trunc('week', h.completed_at)::date AS week, count(*) AS n,
               percentile_cont(0.5) WITHIN GROUP
                 (ORDER BY extract(epoch FROM h.completed_at - h.activated_at)) AS median,
               percentile_cont(0.9) WITHIN GROUP
                 (ORDER BY extract(epoch FROM h.completed_at - h.activated_at)) AS p90
        FROM onboarding_historicalchecklist h
        WHERE h.history_id = (SELECT max(x.history_id) FROM onboarding_historicalchecklist x
                               WHERE x.id = h.id AND x.history_date < %(moment)s)
          AND h.history_type <> '-' AND h.completed_at >= %(since)s AND h.completed_at < %(until)s
        GROUP BY 1""",
    "cases_opened": """
        SELECT date_trunc('week', h.opened_at)::date AS week, count(*) AS n
        FROM support_historicalcase h
        WHERE h.history_id = (SELECT max(x.history_id) FROM support_historicalcase x
                               WHERE x.id = h.id AND x.history_date < %(moment)s)
          AND h.history_type <> '-' AND h.opened_at >= %(since)s AND h.opened_at < %(until)s
        GROUP BY 1""",
    "cases_resolved": """
        SELECT date_trunc('week', h.closed_at)::date AS week, count(*) AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM h.closed_at - least(
                 (coalesce(nullif(h.details ->> 'since', '')::date, h.period)::timestamp
                    AT TIME ZONE 'UTC'),
                 h.opened_at))) AS median
        FROM support_historicalcase h
        WHERE h.history_id = (SELECT max(x.history_id) FROM support_historicalcase x
                               WHERE x.id = h.id AND x.history_date < %(moment)s)
          AND h.history_type <> '-' AND h.state IN ('resolved', 'waived')
          AND h.closed_at >= %(since)s AND h.closed_at < %(until)s
        GROUP BY 1""",
    # Runs and contracts as recorded before the moment; a month reconciled by its first
    # successful run (whole, or a re-check of the customer) started after the 5th day
    # after it ended.
    "billing": """
        WITH runs_then AS (
          SELECT r.* FROM billing_historicalreconciliationrun r
          WHERE r.history_id = (SELECT max(x.history_id) FROM billing_historicalreconciliationrun x
                                 WHERE x.id = r.id AND x.history_date < %(moment)s)
            AND r.history_type <> '-' AND r.status = 'succeeded'
            AND r.started_at >= (r.month + interval '1 month' + interval '5 days')::timestamp
                                  AT TIME ZONE 'UTC'
        ), contracts_then AS (
          SELECT c.* FROM customers_historicalcontract c
          WHERE c.history_id = (SELECT max(x.history_id) FROM customers_historicalcontract x
                                 WHERE x.id = c.id AND x.history_date < %(moment)s)
            AND c.history_type <> '-' AND c.status IN ('active', 'ended')
        ), cases_then AS (
          SELECT h.* FROM support_historicalcase h
          WHERE h.history_id = (SELECT max(x.history_id) FROM support_historicalcase x
                                 WHERE x.id = h.id AND x.history_date < %(moment)s)
            AND h.history_type <> '-' AND h.kind = ANY(%(kinds)s)
            AND h.customer_id IS NOT NULL AND h.period IS NOT NULL
        ), pairs AS (
          SELECT DISTINCT c.customer_id, r.month FROM contracts_then c
          JOIN runs_then r ON c.start_date < r.month + interval '1 month'
                          AND coalesce(c.end_date, r.month) >= r.month
          UNION
          SELECT customer_id, period FROM cases_then
        ), months AS (
          SELECT p.customer_id, p.month,
                 (SELECT min(r.finished_at) FROM runs_then r WHERE r.month = p.month
                    AND (r.customer_id IS NULL OR r.customer_id = p.customer_id)) AS reconciled_at,
                 (SELECT count(*) FROM cases_then k
                   WHERE k.customer_id = p.customer_id AND k.period = p.month
                     AND (k.state NOT IN ('resolved', 'waived') OR EXISTS (
                       SELECT 1 FROM support_historicalcase y
                       WHERE y.id = k.id AND y.history_date < %(moment)s
                         AND y.history_user_id IS NOT NULL))) AS not_clean
          FROM pairs p
        )
        SELECT date_trunc('week', reconciled_at)::date AS week, count(*) AS n,
               count(*) FILTER (WHERE not_clean = 0) AS untouched
        FROM months
        WHERE reconciled_at >= %(since)s AND reconciled_at < %(until)s
        GROUP BY 1""",
}


def _hand_staff_sql() -> str:
    union = " UNION ALL ".join(
        f"SELECT history_user_id AS u, history_date AS d FROM {m.history.model._meta.db_table}"
        for m in audited_models()
    )
    return f"""
        SELECT date_trunc('week', e.d)::date AS week, count(DISTINCT e.u) AS n,
               count(*) FILTER (WHERE g.name = 'Support') AS support,
               count(*) FILTER (WHERE g.name = 'Account managers') AS managers,
               count(*) FILTER (WHERE g.name = 'Ops leads') AS ops,
               count(*) FILTER (WHERE g.name IS NULL) AS none
        FROM ({union}) e
        LEFT JOIN auth_user_groups ug ON ug.user_id = e.u
        LEFT JOIN auth_group g ON g.id = ug.group_id
        WHERE e.u IS NOT NULL AND e.d >= %(since)s AND e.d < %(until)s AND e.d < %(moment)s
        GROUP BY 1"""


def hand(name: str, filters: reporting.ReportFilter) -> dict:
    params = {
        "moment": filters.moment,
        "since": filters.since,
        "until": filters.until,
        "kinds": [str(k) for k in BILLING_KINDS],
    }
    sql = _hand_staff_sql() if name == "staff" else HAND_SQL[name]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [c.name for c in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def approx(value):
    return None if value is None else pytest.approx(value)


# --- figures ------------------------------------------------------------------------------


@pytest.mark.parametrize("day", [6, 13, 20])
def test_every_figure_matches_the_hand_written_sql(world, day):
    filters = as_of(day, weeks=3)
    card = selectors.scorecard(filters=filters)
    expected = {name: hand(name, filters) for name in (*HAND_SQL, "staff")}
    for week in card.weeks:
        onboarding = expected["onboarding"].get(week.monday, {"n": 0, "median": None, "p90": None})
        assert (week.onboarding.count, week.onboarding.median, week.onboarding.p90) == (
            onboarding["n"], approx(onboarding["median"]), approx(onboarding["p90"])
        )  # fmt: skip
        assert week.cases_opened == expected["cases_opened"].get(week.monday, {"n": 0})["n"]
        resolved = expected["cases_resolved"].get(week.monday, {"n": 0, "median": None})
        assert (week.cases_resolved.count, week.cases_resolved.median) == (
            resolved["n"], approx(resolved["median"])
        )  # fmt: skip
        billing = expected["billing"].get(week.monday, {"n": 0, "untouched": 0})
        assert (week.billing.count, week.billing.untouched) == (billing["n"], billing["untouched"])
        staff = expected["staff"].get(
            week.monday, {"n": 0, "support": 0, "managers": 0, "ops": 0, "none": 0}
        )
        assert week.staff == staff["n"]
        assert week.actions == {
            roles.SUPPORT: staff["support"],
            roles.ACCOUNT_MANAGERS: staff["managers"],
            roles.OPS_LEADS: staff["ops"],
            selectors.NO_ROLE: staff["none"],
        }


def test_the_figures_as_of_friday_13_november(world):
    first, second = selectors.scorecard(filters=as_of(13)).weeks
    assert (first.monday, second.monday) == (WEEK1, WEEK2)
    # Onboarding: 14 d and 5 d 6 h; then 8 d.
    assert first.onboarding.count == 2
    assert first.onboarding.median == pytest.approx((14 * DAY + 5 * DAY + 6 * HOUR) / 2)
    assert first.onboarding.p90 == pytest.approx(5.25 * DAY + 0.9 * (14 - 5.25) * DAY)
    assert (second.onboarding.count, second.onboarding.median_text) == (1, "8 d")
    # Support: the support report's first responses, 30 min and 3 h.
    assert (first.support.median_text, second.support.median_text) == ("30 min", "3 h")
    assert first.support.tickets == second.support.tickets == 1
    # Exceptions: opened K1, K2 (and B1-B4 on 1 Nov are the week of 26 Oct); K3, B5.
    assert (first.cases_opened, second.cases_opened) == (2, 2)
    # Resolved: K1 (24 h), B1, B2; then K2 (6 d), K4, B3, B4.
    assert (first.cases_resolved.count, second.cases_resolved.count) == (3, 4)
    # Billing: October reconciled on 6 Nov, Acme's untouched, Globex's touched; September
    # on 10 Nov, Acme's finding resolved by a run, Globex's with none.
    assert (first.billing.count, first.billing.untouched, first.billing.text) == (2, 1, "50%")
    assert (second.billing.count, second.billing.untouched, second.billing.text) == (2, 2, "100%")
    # Adoption: Olga (B2, K1), Sam and Alice; then Olga (K4, K2), Sam and root.
    assert first.staff == 3 and second.staff == 3
    assert first.actions[roles.OPS_LEADS] == 2
    assert first.actions[roles.SUPPORT] == second.actions[roles.SUPPORT] > 0
    assert first.actions[roles.ACCOUNT_MANAGERS] == 1
    assert second.actions[selectors.NO_ROLE] == 1
    assert second.actions[roles.OPS_LEADS] == 2


def test_a_figure_as_of_a_past_date_stays_what_it_was(world, ops_lead, agent):
    before = selectors.scorecard(filters=as_of(13))
    # After the 13th: K1 reopened, the last checklist done, B5 resolved by Olga, Acme
    # September's finding raised again, a checklist deleted, more work by people, and
    # September reconciled again.
    _change(world["k1"], at(11, 17, 9), ops_lead, state=Case.State.OPEN)
    _complete(Checklist.objects.get(completed_at__isnull=True), at(11, 16, 9))
    _change(world["b5"], at(11, 17, 10), ops_lead, state=Case.State.RESOLVED)
    b4 = Case.objects.get(summary="B4")
    _change(b4, at(11, 18, 6), state=Case.State.OPEN)
    with on(at(11, 18, 7)), acting_as_user(ops_lead):
        done = Checklist.objects.filter(completed_at__isnull=False).order_by("pk").first()
        done.tasks.all().delete()
        done.delete()
        world["acme"].name = "Acme Inc"
        world["acme"].save()
    _run(dt.date(2026, 9, 1), at(11, 18, 5, 30))
    after = selectors.scorecard(filters=as_of(13))
    assert after == before
    # ... while the figures as of now have moved.
    now = selectors.scorecard(filters=as_of(20, weeks=3))
    assert now.weeks[0].cases_resolved.count == before.weeks[0].cases_resolved.count - 1
    assert now.weeks[0].onboarding.count == 1
    # September still reconciled on 10 Nov, Acme's no longer settled.
    assert (now.weeks[1].billing.count, now.weeks[1].billing.untouched) == (2, 1)
    [acme_september] = [
        line
        for line in selectors.scorecard_rows(
            filters=as_of(20, weeks=3), figure="billing", week=WEEK2
        )
        if line.title == "Acme Inc, September 2026"
    ]
    assert acme_september.value == "finding open"


# --- drill-down ---------------------------------------------------------------------------


def test_each_drill_down_lists_as_many_rows_as_its_figure(world):
    filters = as_of(13)
    card = selectors.scorecard(filters=filters)
    for week in card.weeks:
        counts = {
            selectors.ONBOARDING: week.onboarding.count,
            selectors.BILLING: week.billing.count,
            selectors.CASES_OPENED: week.cases_opened,
            selectors.CASES_RESOLVED: week.cases_resolved.count,
            selectors.STAFF: week.staff,
        }
        for figure, count in counts.items():
            lines = selectors.scorecard_rows(filters=filters, figure=figure, week=week.monday)
            assert len(lines) == count, (figure, week.monday)
        for role, count in week.actions.items():
            lines = selectors.scorecard_rows(
                filters=filters, figure=selectors.ACTIONS, week=week.monday, role=role
            )
            assert sum(line.weight for line in lines) == count, (role, week.monday)


def test_the_rows_name_their_records(world, ops_lead):
    ops_lead.last_name = "Nilsen"
    ops_lead.save(update_fields=["last_name"])
    filters = as_of(13)
    opened = selectors.scorecard_rows(filters=filters, figure="cases_opened", week=WEEK2)
    assert [line.title for line in opened] == ["B5", "K3"]  # by when they were opened
    assert opened[1].link == ("admin:support_case_change", world["k3"].pk)
    cases = {case.summary: case.pk for case in Case.objects.all()}
    billing = selectors.scorecard_rows(filters=filters, figure="billing", week=WEEK1)
    assert [(line.title, line.detail, line.value) for line in billing] == [
        ("Acme, October 2026", f"1 finding (case #{cases['B1']})", "no touch"),
        (
            "Globex, October 2026",
            f"2 findings (cases #{cases['B2']}, #{cases['B3']})",
            "touched by Olga Nilsen",
        ),
    ]
    assert billing[0].link == ("admin:customers_customer_change", world["acme"].pk)
    assert billing[0].at == at(11, 6, 5, 35)  # when the run that reconciled it finished
    september = selectors.scorecard_rows(filters=filters, figure="billing", week=WEEK2)
    assert [(line.title, line.detail, line.value) for line in september] == [
        ("Acme, September 2026", f"1 finding (case #{cases['B4']})", "no touch"),
        ("Globex, September 2026", "no findings", "no touch"),
    ]
    ops = selectors.scorecard_rows(
        filters=filters, figure="actions", week=WEEK1, role=roles.OPS_LEADS
    )
    assert [(line.title, line.value, line.link) for line in ops] == [
        ("Olga Nilsen (olga)", "2 actions", ("admin:auth_user_change", ops_lead.pk))
    ]


# --- the pages ----------------------------------------------------------------------------


@pytest.fixture
def lead_client(ops_lead):
    client = Client()
    client.force_login(ops_lead)
    return client


def test_the_page_shows_every_figure_linked_to_its_rows(world, lead_client):
    with on(at(11, 20, 12)):
        response = lead_client.get(PAGE, {"as_of": "2026-11-13", "weeks": "2"})
        assert response.status_code == 200
        page = response.content.decode()
        assert 'data-testid="scorecard-chart"' in page and 'class="chart"' in page
        rows = (
            "/admin/scorecard/rows/?as_of=2026-11-13&amp;weeks=2"
            "&amp;figure=billing&amp;week=2026-11-02"
        )
        assert f'<a href="{rows}">50%</a>' in page
        support = (
            "/admin/support/ticket/report/tickets/?as_of=2026-11-13&amp;weeks=2"
            "&amp;week=2026-11-02&amp;clock=first_response"
        )
        assert f'<a href="{support}">30 min</a>' in page
        listed = lead_client.get(rows.replace("&amp;", "&"))
    assert listed.status_code == 200
    assert listed.context["total"] == 2
    assert 'data-testid="rows-row"' in listed.content.decode()
    assert f'href="/admin/customers/customer/{world["acme"].pk}/change/"' in listed.content.decode()


def test_the_page_costs_the_same_for_one_week_and_for_twelve(world, lead_client):
    def queries(weeks: str) -> int:
        with on(at(11, 20, 12)), CaptureQueriesContext(connection) as captured:
            assert lead_client.get(PAGE, {"as_of": "2026-11-13", "weeks": weeks}).status_code == 200
        return len(captured.captured_queries)

    queries("1")  # warm the session and per-process caches
    assert queries("1") == queries("12")


def test_the_scorecard_is_five_queries_and_a_drill_down_one(world, django_assert_num_queries):
    with django_assert_num_queries(5):
        selectors.scorecard(filters=as_of(13, weeks=12))
    for figure in ("onboarding", "billing", "cases_opened", "staff"):
        with django_assert_num_queries(1):
            selectors.scorecard_rows(filters=as_of(13), figure=figure, week=WEEK1)


@pytest.mark.parametrize(
    ("persona", "status"),
    [("agent", 403), ("manager", 403), ("ops_lead", 200), ("superuser", 200)],
)
def test_ops_leads_and_superusers_open_the_scorecard(request, persona, status):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    assert client.get(PAGE).status_code == status
    assert client.get(ROWS, {"figure": "staff", "week": "2026-11-02"}).status_code == status
    sidebar = "Operations scorecard" in client.get("/admin/").content.decode()
    assert sidebar == (status == 200)


def test_someone_not_on_the_staff_is_sent_to_sign_in(outsider):
    client = Client()
    client.force_login(outsider)
    response = client.get(PAGE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Client().get(ROWS).status_code == 302


@pytest.mark.parametrize(
    ("url", "params", "message"),
    [
        (PAGE, {"as_of": "2026-13-01"}, "as_of: Enter a valid date."),
        (PAGE, {"as_of": "garbage"}, "as_of: Enter a valid date."),
        (PAGE, {"as_of": "2026-11-21"},
         "as_of: Give a date from 2000-01-01 to today (2026-11-20)."),
        (PAGE, {"as_of": "0001-01-01"}, "as_of: Give a date from 2000-01-01 to 2100-12-31."),
        (PAGE, {"weeks": "0"}, "weeks: Ensure this value is greater than or equal to 1."),
        (PAGE, {"weeks": "53"}, "weeks: Ensure this value is less than or equal to 52."),
        (PAGE, {"weeks": "many"}, "weeks: Enter a whole number."),
        (ROWS, {"week": "2026-11-02"}, "figure: This field is required."),
        (ROWS, {"figure": "revenue", "week": "2026-11-02"},
         "figure: Select a valid choice. revenue is not one of the available choices."),
        (ROWS, {"figure": "staff"}, "week: This field is required."),
        (ROWS, {"figure": "staff", "week": "9999-12-31"},
         "week: Give a date from 2000-01-01 to 2100-12-31."),
        (ROWS, {"figure": "actions", "week": "2026-11-02"},
         "role: Give the role whose actions to list."),
        (ROWS, {"figure": "actions", "week": "2026-11-02", "role": "Admins"},
         "role: Select a valid choice. Admins is not one of the available choices."),
    ],
)  # fmt: skip
def test_a_parameter_not_understood_is_a_400_that_says_which(lead_client, url, params, message):
    with on(at(11, 20, 12)):
        response = lead_client.get(url, params)
    assert response.status_code == 400
    assert [str(m) for m in response.context["messages"]] == [
        f"The scorecard's parameters were not understood: {message}"
    ]
    assert 'data-testid="scorecard-table"' not in response.content.decode()
    assert 'data-testid="rows-table"' not in response.content.decode()


def test_a_name_from_outside_is_escaped(lead_client):
    with on(at(11, 3, 9)), acting_as("test:fixture"):
        customer = builders.customer(name="<script>alert(1)</script>")
    _case(at(11, 3, 10), summary="<b>bold</b>", customer=customer)
    with on(at(11, 20, 12)):
        response = lead_client.get(ROWS, {"figure": "cases_opened", "week": "2026-11-02"})
    page = response.content.decode()
    assert "<script>alert(1)</script>" not in page and "<b>bold</b>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert Customer.objects.filter(name__startswith="<script>").exists()
