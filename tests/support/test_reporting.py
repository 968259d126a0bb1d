"""Support reporting (support.reporting, docs/product.md#support-reporting): first-response
and resolution times (median, p90) and the share within target, per week, plan, priority
and person, read from history as it stood at a moment.

The tickets are worked through the services at fixed times (time_machine), so their
history is what production writes. Every figure is checked against a hand-written SQL
query over the same tables (``HAND_SQL``), and the main ones against numbers worked out
by hand. 2 November 2026 is a Monday; business hours Mon-Fri 09:00-17:00 UTC."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.context import acting_as
from customers.models import Contract
from kit import roles
from support import reporting, tickets
from support.models import Ticket
from support.reporting import ReportFilter, report_moment, report_tickets, support_report
from tests import builders
from tests.personas import staff_user
from tests.records import active_contract

pytestmark = pytest.mark.django_db

UTC = dt.UTC
HOUR = 3600.0


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def on(when: dt.datetime):
    return time_machine.travel(when, tick=False)


def end_of(day: int) -> dt.datetime:
    """The moment a report as of 2026-11-<day> reads up to."""
    return at(day, 0) + dt.timedelta(days=1)


# --- the world ----------------------------------------------------------------------------


@pytest.fixture
def ann(db):
    """Ann, a second support agent."""
    return staff_user("ann", roles.SUPPORT, last_name="Lee")


@pytest.fixture
def acme(db, sla_policies):
    """Acme on Growth since before the weeks reported (recorded on 1 November)."""
    with on(at(1, 8)):
        customer = builders.customer(external_id="acme-1", name="Acme")
        active_contract(customer, plan=Contract.Plan.GROWTH)
    return customer


@pytest.fixture
def initech(db, sla_policies):
    """Initech on Starter, upgraded to Enterprise on Tuesday 10 November at 12:00."""
    with on(at(1, 8)):
        customer = builders.customer(external_id="initech-1", name="Initech")
        contract = active_contract(customer, plan=Contract.Plan.STARTER)
    with on(at(10, 12)), acting_as("test:upgrade"):
        contract.plan = Contract.Plan.ENTERPRISE
        contract.save(update_fields=["plan"])
    return customer


def opened(by, when, **fields) -> Ticket:
    with on(when):
        return tickets.ticket_create(
            by=by,
            subject=fields.pop("subject", "Help"),
            requester_email="pat@example.com",
            **fields,
        )


def assign(ticket, who, by, when) -> None:
    with on(when):
        tickets.ticket_assign(ticket=ticket, assignee=who, by=by)


def reply(ticket, by, when) -> None:
    with on(when):
        tickets.ticket_comment(ticket=ticket, author=by, kind="reply", body="On it.")


def status(ticket, value, by, when) -> None:
    with on(when):
        tickets.ticket_set_status(ticket=ticket, status=value, by=by)


@pytest.fixture
def world(agent, ann, acme, initech, sla_policies):
    """Two weeks of tickets (week of 2 Nov: T1-T3; week of 9 Nov: T4-T7), worked by Sam
    (agent) and Ann. Acme is on Growth; Initech on Starter until 10 Nov 12:00."""
    sam = agent
    made = {}
    customer = acme
    # T1: Acme, normal; Sam from 10:30; answered 11:00 (1 h, met); raised to high at 12:00;
    # solved Tuesday 10:00 (24 h, met).
    t1 = made["T1"] = opened(sam, at(2, 10), customer=customer, subject="T1")
    assign(t1, sam, sam, at(2, 10, 30))
    reply(t1, sam, at(2, 11))
    with on(at(2, 12)):
        tickets.ticket_set_priority(ticket=t1, priority="high", by=sam)
    status(t1, "solved", sam, at(3, 10))
    # T2: Acme, high, Monday 16:00; answered by Ann Tuesday 15:00 while unassigned (23 h,
    # missed: due Tuesday 12:00), then assigned to her; never solved (resolution due
    # Thursday 12:00: missed by Ann).
    t2 = made["T2"] = opened(sam, at(2, 16), customer=customer, priority="high", subject="T2")
    reply(t2, ann, at(3, 15))
    assign(t2, ann, sam, at(3, 15, 30))
    # T3: Initech (Starter), urgent, Wednesday 09:00; Sam; answered 09:30 (met); solved
    # 12:00, reopened Thursday 10:00, solved again Friday 10:00 (resolution 49 h, missed).
    t3 = made["T3"] = opened(sam, at(4, 9), customer=initech, priority="urgent", subject="T3")
    assign(t3, sam, sam, at(4, 9, 5))
    reply(t3, sam, at(4, 9, 30))
    status(t3, "solved", sam, at(4, 12))
    status(t3, "open", sam, at(5, 10))
    status(t3, "solved", sam, at(6, 10))
    # T4: Initech, normal, Tuesday 10 Nov 09:00; Ann; answered 14:00, after the upgrade
    # (5 h, met, counted under Enterprise).
    t4 = made["T4"] = opened(sam, at(10, 9), customer=initech, subject="T4")
    assign(t4, ann, sam, at(10, 9, 30))
    reply(t4, ann, at(10, 14))
    # T5: no customer, low, Wednesday 10:00; nobody answers (first response due Monday 16
    # Nov 10:00).
    made["T5"] = opened(sam, at(11, 10), priority="low", subject="T5")
    # T6: Acme, solved without a reply an hour after it came (no first response to count;
    # resolution 1 h, met).
    t6 = made["T6"] = opened(sam, at(12, 9), customer=customer, subject="T6")
    status(t6, "solved", sam, at(12, 10))
    # T7: Acme, Friday 09:00; Sam answers at 09:10 and waits on the customer (resolution
    # paused: waiting, without a deadline).
    t7 = made["T7"] = opened(sam, at(13, 9), customer=customer, subject="T7")
    assign(t7, sam, sam, at(13, 9, 1))
    reply(t7, sam, at(13, 9, 10))
    status(t7, "pending", sam, at(13, 9, 11))
    return made


def report_as_of(day: int, *, weeks: int = 2, **filters) -> reporting.Report:
    with on(at(20, 12)):
        moment = report_moment(dt.date(2026, 11, day))
    return support_report(filters=ReportFilter(moment=moment, weeks=weeks, **filters))


def row(rows, label):
    (found,) = [r for r in rows if r.label == label]
    return found


# --- the hand-written SQL -----------------------------------------------------------------

# Written apart from support.reporting, as a person checking its figures would: each
# ticket as it was (no newer version before the moment), its first reply and its last
# solve, whether each clock met its deadline, and plan, priority and person read by
# correlated subqueries at the moment it was decided.
HAND_SQL = """
WITH latest AS (
  SELECT h.* FROM support_historicalticket h
  WHERE h.history_date < %(moment)s
    AND h.created_at >= %(since)s AND h.created_at < %(until)s
    AND NOT EXISTS (
      SELECT 1 FROM support_historicalticket n
      WHERE n.id = h.id AND n.history_date < %(moment)s
        AND (n.history_date, n.history_id) > (h.history_date, h.history_id))
    AND h.history_type <> '-'
),
times AS (
  SELECT l.id, l.created_at, l.first_response_due_at AS fr_due,
         l.resolution_due_at AS res_due,
         (SELECT min(h.history_date) FROM support_historicalticket h
           WHERE h.id = l.id AND h.history_date < %(moment)s) AS first_seen,
         least(l.first_responded_at,
               (SELECT min(c.created_at) FROM support_ticketcomment c
                 WHERE c.ticket_id = l.id AND c.kind = 'reply'
                   AND c.created_at < %(moment)s)) AS replied,
         CASE WHEN l.status IN ('solved', 'closed') THEN
           (SELECT min(h.history_date) FROM support_historicalticket h
             WHERE h.id = l.id AND h.history_date < %(moment)s
               AND h.status IN ('solved', 'closed')
               AND NOT EXISTS (
                 SELECT 1 FROM support_historicalticket o
                 WHERE o.id = l.id AND o.history_date < %(moment)s
                   AND o.history_date > h.history_date
                   AND o.status NOT IN ('solved', 'closed')))
         END AS solved
  FROM latest l
),
clock_rows AS (
  SELECT id, created_at, first_seen, 'first_response' AS clock, replied AS stop, fr_due AS due,
         CASE WHEN replied IS NOT NULL AND fr_due IS NULL THEN 'no_target'
              WHEN replied IS NOT NULL AND replied <= fr_due THEN 'met'
              WHEN replied IS NOT NULL THEN 'missed'
              WHEN fr_due < coalesce(solved, %(moment)s) THEN 'missed'
              WHEN solved IS NOT NULL THEN 'skip'
              ELSE 'waiting' END AS outcome,
         coalesce(replied, CASE WHEN fr_due < coalesce(solved, %(moment)s) THEN fr_due END)
           AS decided
  FROM times
  UNION ALL
  SELECT id, created_at, first_seen, 'resolution', solved, res_due,
         CASE WHEN solved IS NOT NULL AND res_due IS NULL THEN 'no_target'
              WHEN solved IS NOT NULL AND solved <= res_due THEN 'met'
              WHEN solved IS NOT NULL THEN 'missed'
              WHEN res_due < %(moment)s THEN 'missed'
              ELSE 'waiting' END,
         coalesce(solved, CASE WHEN res_due < %(moment)s THEN res_due END)
  FROM times
),
looked AS (
  SELECT r.*, greatest(coalesce(r.decided, %(moment)s), r.first_seen) AS look
  FROM clock_rows r WHERE r.outcome <> 'skip'
),
facts AS (
  SELECT lk.clock, lk.outcome,
         extract(epoch FROM lk.stop - lk.created_at) AS secs,
         date_trunc('week', lk.created_at AT TIME ZONE 'UTC')::date AS week,
         (SELECT h.priority FROM support_historicalticket h
           WHERE h.id = lk.id AND h.history_date <= lk.look AND h.history_date < %(moment)s
           ORDER BY h.history_date DESC, h.history_id DESC LIMIT 1) AS priority,
         (SELECT h.assignee_id FROM support_historicalticket h
           WHERE h.id = lk.id AND h.history_date <= lk.look AND h.history_date < %(moment)s
           ORDER BY h.history_date DESC, h.history_id DESC LIMIT 1) AS person,
         (SELECT c.plan FROM customers_historicalcontract c
           WHERE c.customer_id = (
                   SELECT h.customer_id FROM support_historicalticket h
                   WHERE h.id = lk.id AND h.history_date <= lk.look
                     AND h.history_date < %(moment)s
                   ORDER BY h.history_date DESC, h.history_id DESC LIMIT 1)
             AND c.history_date <= lk.look AND c.history_date < %(moment)s
             AND c.history_type <> '-'
             AND NOT EXISTS (
               SELECT 1 FROM customers_historicalcontract n
               WHERE n.id = c.id AND n.history_date <= lk.look
                 AND n.history_date < %(moment)s
                 AND (n.history_date, n.history_id) > (c.history_date, c.history_id))
           ORDER BY c.status = 'active' DESC, c.start_date DESC, c.id DESC LIMIT 1) AS plan
  FROM looked lk
)
SELECT clock, {dimension} AS value, count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY secs),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY secs),
       count(*) FILTER (WHERE outcome = 'met'),
       count(*) FILTER (WHERE outcome = 'missed'),
       count(*) FILTER (WHERE outcome = 'waiting')
FROM facts
GROUP BY 1, 2
"""


def hand_figures(filters: ReportFilter, dimension: str) -> dict:
    """{(clock, value): (tickets, median, p90, met, missed, waiting)} by the hand SQL."""
    column = {"week": "week", "plan": "plan", "priority": "priority", "person": "person"}
    sql = HAND_SQL.format(dimension=column.get(dimension, "'all'"))
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {"moment": filters.moment, "since": filters.since, "until": filters.until}
        )
        return {(clock, value): tuple(rest) for clock, value, *rest in cursor.fetchall()}


def report_figures(report: reporting.Report, dimension: str) -> dict:
    rows = {
        "week": report.weeks,
        "plan": report.plans,
        "priority": report.priorities,
        "person": report.people,
        "total": [report.total],
    }[dimension]
    out = {}
    for each in rows:
        value = "all" if dimension == "total" else each.value
        for clock in reporting.CLOCKS:
            f = each.figures(clock)
            if f.tickets:
                out[clock, value] = (f.tickets, f.median, f.p90, f.met, f.missed, f.waiting)
    return out


def approx(figures: dict) -> dict:
    return {
        key: tuple(round(v, 3) if isinstance(v, float) else v for v in values)
        for key, values in figures.items()
    }


@pytest.mark.parametrize("day", [4, 13, 17])
@pytest.mark.parametrize("dimension", ["week", "plan", "priority", "person", "total"])
def test_every_figure_matches_the_hand_written_sql(world, day, dimension):
    report = report_as_of(day)
    expected = approx(hand_figures(report.filters, dimension))
    assert expected  # the seed reaches every breakdown
    assert approx(report_figures(report, dimension)) == expected


# --- the figures, worked out by hand ------------------------------------------------------


def test_the_weeks_figures_as_of_friday_13_november(world):
    report = report_as_of(13)

    first, second = report.weeks
    assert (first.value, second.value) == (dt.date(2026, 11, 2), dt.date(2026, 11, 9))
    # Week of 2 Nov, first response: T3 30 min, T1 1 h, T2 23 h (missed).
    fr = first.first_response
    assert (fr.tickets, fr.measured, fr.met, fr.missed, fr.waiting) == (3, 3, 2, 1, 0)
    assert fr.median == 1 * HOUR
    assert fr.p90 == pytest.approx(18.6 * HOUR)  # 1 h + 0.8 x (23 h - 1 h)
    assert fr.within_text == "67%"
    # Resolution: T1 24 h (met), T3 49 h (missed: reopened), T2 still open past its deadline.
    res = first.resolution
    assert (res.tickets, res.measured, res.met, res.missed, res.waiting) == (3, 2, 1, 2, 0)
    assert res.median == 36.5 * HOUR
    # Week of 9 Nov: T7 10 min and T4 5 h answered, T5 waiting; T6 has no first response.
    fr = second.first_response
    assert (fr.tickets, fr.measured, fr.met, fr.missed, fr.waiting) == (3, 2, 2, 0, 1)
    assert fr.median == 2 * HOUR + 35 * 60
    assert (fr.median_text, fr.within_text) == ("2 h 35 min", "100%")
    res = second.resolution
    assert (res.tickets, res.measured, res.met, res.missed, res.waiting) == (4, 1, 1, 0, 3)
    assert res.median == 1 * HOUR


def test_plan_and_person_are_those_of_when_the_clock_was_decided(world, agent, ann):
    report = report_as_of(13)

    # T4 was answered after Initech's upgrade: Enterprise; T3 before it: Starter.
    plans = {r.label: r.first_response.tickets for r in report.plans}
    assert plans == {"Starter": 1, "Growth": 3, "Enterprise": 1, "No plan": 1}
    # T2 was answered by Ann while unassigned; she had it when its resolution was missed.
    people = {r.label: (r.first_response.tickets, r.resolution.tickets) for r in report.people}
    assert people == {"Ann Lee": (1, 2), "Sam": (3, 3), "Unassigned": (2, 2)}
    assert [r.value for r in report.people] == [ann.pk, agent.pk, None]
    # T1 was normal when answered, high when solved.
    priorities = {
        r.label: (r.first_response.tickets, r.resolution.tickets) for r in report.priorities
    }
    assert priorities == {
        "Urgent": (1, 1),
        "High": (1, 2),
        "Normal": (3, 3),
        "Low": (1, 1),
    }
    assert [r.label for r in report.priorities] == ["Urgent", "High", "Normal", "Low"]


def test_a_report_as_of_a_past_date_does_not_move_with_what_came_after(world, agent):
    before = report_as_of(13)
    # After that Friday: T5 answered, T2 solved, Acme upgraded to Enterprise, a
    # ticket of the week of 9 Nov imported late, and a new ticket.
    reply(world["T5"], agent, at(16, 9))
    status(world["T2"], "solved", agent, at(16, 10))
    with on(at(16, 11)), acting_as("test:later"):
        for contract in Contract.objects.filter(customer__name="Acme"):
            contract.plan = Contract.Plan.ENTERPRISE
            contract.save(update_fields=["plan"])
        builders.ticket(subject="Imported", created_at=at(10, 9), first_responded_at=at(10, 10))
    opened(agent, at(16, 12), subject="New")

    assert report_as_of(13) == before
    after = report_as_of(17)
    assert after != before
    week_of_9 = row(after.weeks, "9 Nov 2026")
    assert week_of_9.first_response.tickets == 4  # the imported one counts from its record
    assert row(after.weeks, "16 Nov 2026").first_response.tickets == 1
    # Acme was upgraded after T1, T2 and T7 were answered: still Growth then.
    three_weeks = report_as_of(17, weeks=3)
    assert row(three_weeks.plans, "Growth").first_response.tickets == 3


def test_the_first_response_deadline_passing_unanswered_is_a_miss_from_then(world):
    t5 = "T5"
    waiting = report_tickets(
        filters=ReportFilter(moment=end_of(13), weeks=2, clock="first_response", priority="low"),
    )
    assert [(line.subject, line.outcome) for line in waiting.lines] == [(t5, "waiting")]
    missed = report_tickets(
        filters=ReportFilter(moment=end_of(17), weeks=3, clock="first_response", priority="low"),
    )
    [line] = missed.lines
    assert (line.outcome, line.seconds, line.decided_at) == ("missed", None, at(16, 10))


# --- edges --------------------------------------------------------------------------------


def test_without_tickets_every_week_is_shown_empty(db):
    report = support_report(filters=ReportFilter(moment=at(20, 12)))

    assert len(report.weeks) == 12
    assert report.weeks[-1].value == dt.date(2026, 11, 16)
    assert report.weeks[0].value == dt.date(2026, 8, 31)
    assert report.empty
    assert (report.plans, report.priorities, report.people) == ([], [], [])
    assert report.total.first_response == reporting.Figures()
    assert report.total.first_response.within_text == "—"


def test_one_ticket_is_its_own_median_and_p90(agent, sla_policies):
    ticket = opened(agent, at(2, 10))
    reply(ticket, agent, at(2, 10, 45))

    total = support_report(filters=ReportFilter(moment=at(2, 12))).total
    assert (total.first_response.median, total.first_response.p90) == (45 * 60.0, 45 * 60.0)
    assert total.first_response.within_text == "100%"
    # Still open: counted as waiting, without a resolution time.
    res = total.resolution
    assert (res.tickets, res.measured, res.waiting, res.median) == (1, 0, 1, None)


def test_a_ticket_opened_before_service_levels_counts_its_time_but_not_the_share(agent):
    with on(at(2, 9)):
        builders.ticket(subject="Old", first_responded_at=at(2, 11))

    fr = support_report(filters=ReportFilter(moment=at(2, 12))).total.first_response
    assert (fr.tickets, fr.measured, fr.median, fr.decided, fr.within) == (1, 1, 2 * HOUR, 0, None)


def test_a_deleted_ticket_still_counts_as_of_before_its_deletion(agent, sla_policies):
    ticket = opened(agent, at(2, 10))
    reply(ticket, agent, at(2, 11))
    with on(at(3, 9)), acting_as("test:cleanup"):
        Ticket.objects.get(pk=ticket.pk).delete()

    assert support_report(filters=ReportFilter(moment=at(3, 8))).total.first_response.tickets == 1
    assert support_report(filters=ReportFilter(moment=at(3, 10))).total.first_response.tickets == 0
    [line] = report_tickets(filters=ReportFilter(moment=at(3, 8), clock="first_response")).lines
    assert line.present is False


def test_the_weeks_end_with_the_moments_week_and_a_monday_midnight_ends_the_one_before():
    assert ReportFilter(moment=at(23, 0), weeks=2).week_starts == [
        dt.date(2026, 11, 9),
        dt.date(2026, 11, 16),
    ]
    assert ReportFilter(moment=at(23, 0, 1), weeks=1).week_starts == [dt.date(2026, 11, 23)]


def test_as_of_a_date_is_the_end_of_that_day_but_never_after_now():
    with on(at(20, 12)):
        assert report_moment(dt.date(2026, 11, 13)) == at(14, 0)
        assert report_moment(dt.date(2026, 11, 20)) == at(20, 12)
        assert report_moment(None) == at(20, 12)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "—"), (0, "0 min"), (2700, "45 min"), (3600, "1 h"), (12000, "3 h 20 min"),
     (86400, "1 d"), (187200, "2 d 4 h")],
)  # fmt: skip
def test_durations_read_in_minutes_hours_and_days(seconds, text):
    assert reporting.duration_text(seconds) == text


# --- queries ------------------------------------------------------------------------------


def test_the_report_is_one_query_and_a_drill_down_two(world, django_assert_num_queries):
    filters = ReportFilter(moment=end_of(13), weeks=2)
    with django_assert_num_queries(1):
        support_report(filters=filters)
    with django_assert_num_queries(2):
        report_tickets(filters=ReportFilter(moment=end_of(13), weeks=2, clock="resolution"))


# --- drill-down ---------------------------------------------------------------------------


def test_a_drill_down_lists_the_tickets_of_its_figure_fastest_first(world, agent):
    filters = ReportFilter(
        moment=end_of(13), weeks=2, week=dt.date(2026, 11, 4), clock="first_response"
    )
    listed = report_tickets(filters=filters)

    assert [(line.subject, line.time_text, line.outcome) for line in listed.lines] == [
        ("T3", "30 min", "met"),
        ("T1", "1 h", "met"),
        ("T2", "23 h", "missed"),
    ]
    week = row(report_as_of(13).weeks, "2 Nov 2026").first_response
    assert listed.summary == week
    by_person = report_tickets(
        filters=ReportFilter(moment=end_of(13), weeks=2, person="none", clock="first_response")
    )
    assert [line.subject for line in by_person.lines] == ["T2", "T5"]
    sam = report_tickets(
        filters=ReportFilter(moment=end_of(13), weeks=2, person=agent.pk, clock="resolution")
    )
    assert sorted(line.subject for line in sam.lines) == ["T1", "T3", "T7"]


def test_a_drill_down_pages_past_the_end_show_the_last_page(world, monkeypatch):
    monkeypatch.setattr(reporting, "DRILL_PAGE_SIZE", 2)
    filters = ReportFilter(moment=end_of(13), weeks=2, clock="resolution")
    listed = report_tickets(filters=filters, page=99)
    assert (listed.page, listed.pages, listed.first_position) == (4, 4, 7)
    assert len(listed.lines) == 1


# --- the pages ----------------------------------------------------------------------------


@pytest.fixture
def browser(agent):
    client = Client()
    client.force_login(agent)
    return client


REPORT = "/admin/support/ticket/report/"


def test_the_report_page_shows_each_breakdown_with_links_to_its_tickets(world, browser):
    with on(at(20, 12)):
        response = browser.get(REPORT, {"as_of": "2026-11-13", "weeks": "2"})
    assert response.status_code == 200
    page = response.content.decode()
    for section in ("week", "plan", "priority", "person"):
        assert f'data-testid="report-{section}"' in page
    assert 'data-testid="report-chart"' in page and 'class="chart"' in page
    drill = (
        reverse("admin:support_ticket_report_tickets")
        + "?as_of=2026-11-13&amp;weeks=2&amp;week=2026-11-02&amp;clock=first_response"
    )
    assert f'<a href="{drill}">67%</a>'.replace(">67%", ' title="2 of 3">67%') in page

    with on(at(20, 12)):
        listed = browser.get(drill.replace("&amp;", "&"))
    assert listed.status_code == 200
    assert [line.subject for line in listed.context["tickets"].lines] == ["T3", "T1", "T2"]
    assert listed.context["tickets"].summary.within_text == "67%"
    # The same tickets in the ticket list, to work them there.
    with on(at(20, 12)):
        changelist = browser.get(listed.context["changelist"])
    shown = {t.subject for t in changelist.context["cl"].result_list}
    assert shown == {"T1", "T2", "T3"}


def test_the_report_page_costs_the_same_without_tickets_and_with_them(world, browser):
    def queries(as_of: str) -> int:
        with on(at(20, 12)), CaptureQueriesContext(connection) as captured:
            assert browser.get(REPORT, {"as_of": as_of}).status_code == 200
        return len(captured.captured_queries)

    queries("2026-11-13")  # warm the session and per-process caches
    assert queries("2026-10-01") == queries("2026-11-13")


def test_every_role_that_reads_tickets_reads_the_report(world, manager, ops_lead, outsider):
    for person in (manager, ops_lead):
        client = Client()
        client.force_login(person)
        assert client.get(REPORT).status_code == 200
        assert "Support report" in client.get("/admin/").content.decode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"as_of": "2026-13-01"}, "as_of: Enter a valid date."),
        ({"as_of": "0001-01-01"}, "as_of: Give a date from 2000-01-01 to 2100-12-31."),
        ({"as_of": "2026-11-21"}, "as_of: Give a date from 2000-01-01 to today (2026-11-20)."),
        ({"plan": "platinum"},
         "plan: Select a valid choice. platinum is not one of the available choices."),
        ({"weeks": "0"}, "weeks: Ensure this value is greater than or equal to 1."),
        ({"priority": "asap"},
         "priority: Select a valid choice. asap is not one of the available choices."),
    ],
)  # fmt: skip
def test_a_parameter_not_understood_is_said_and_nothing_is_shown(browser, params, message):
    with on(at(20, 12)):
        response = browser.get(REPORT, params)
    assert response.status_code == 200
    assert response.context["report"] is None
    assert [str(m) for m in response.context["messages"]] == [
        f"Some filters were not understood, so nothing is listed: {message}"
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "clock: This field is required."),
        ({"clock": "first_response", "person": "sam"},
         "person: Give a staff member's id, or “none” for unassigned."),
        ({"clock": "first_response", "week": "9999-12-31"},
         "week: Give a date from 2000-01-01 to 2100-12-31."),
    ],
)  # fmt: skip
def test_a_drill_down_not_understood_is_said(browser, params, message):
    response = browser.get(REPORT + "tickets/", params)
    assert response.status_code == 200
    assert response.context["tickets"] is None
    assert [str(m) for m in response.context["messages"]] == [
        f"Some filters were not understood, so nothing is listed: {message}"
    ]


def test_the_csv_holds_the_table(world, browser):
    with on(at(20, 12)):
        response = browser.get(REPORT + "export.csv", {"as_of": "2026-11-13", "weeks": "2"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        'attachment; filename="support-report-20261114-0000.csv"'
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == reporting.Report.CSV_HEADER
    assert rows[1] == [
        "week", "2026-11-02",
        "3", "3", "1.0", "18.6", "2", "1", "66.67", "0",
        "3", "2", "36.5", "46.5", "1", "2", "33.33", "0",
    ]  # fmt: skip
    assert [r[:2] for r in rows[1:]] == [
        ["week", "2026-11-02"],
        ["week", "2026-11-09"],
        ["plan", "Starter"],
        ["plan", "Growth"],
        ["plan", "Enterprise"],
        ["plan", "No plan"],
        ["priority", "Urgent"],
        ["priority", "High"],
        ["priority", "Normal"],
        ["priority", "Low"],
        ["person", "Ann Lee"],
        ["person", "Sam"],
        ["person", "Unassigned"],
        ["total", "All tickets"],
    ]
    total = rows[-1]
    assert total[2:4] == ["6", "5"]  # T6 has no first response; T5 waits


def test_the_csv_neutralises_a_name_that_reads_as_a_formula(agent, sla_policies):
    evil = staff_user("eve", roles.SUPPORT)
    evil.first_name = '=HYPERLINK("http://x")'
    evil.save(update_fields=["first_name"])
    ticket = opened(agent, at(2, 10))
    assign(ticket, evil, agent, at(2, 10, 5))
    client = Client()
    client.force_login(agent)
    with on(at(2, 12)):
        response = client.get(REPORT + "export.csv")
    text = b"".join(response.streaming_content).decode()
    assert '"person","\'=HYPERLINK(""http://x"")"' in text


def test_the_csv_refuses_parameters_it_does_not_understand(browser):
    response = browser.get(REPORT + "export.csv", {"plan": "platinum"})
    assert response.status_code == 400
    assert response.content.decode() == (
        "The export's parameters were not understood: plan: Select a valid choice. "
        "platinum is not one of the available choices."
    )
