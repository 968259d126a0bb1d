"""Problems (support.problems, docs/product.md#problems): an error fingerprint at several
tenants becomes one problem of their tickets; support links and unlinks tickets, sends one
update to every linked open ticket's requester and solves the problem with its tickets."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.context import acting_as, acting_as_user
from audit.previews import preview_token
from customers.models import Contract
from support import problems, ticket_events
from support.models import Problem, Ticket, TicketComment
from support.problems import (
    ProblemActionError,
    ProblemPermissionError,
    problem_link,
    problem_solve,
    problem_unlink,
    problem_update_preview,
    problem_update_send,
    solve_preview_state,
    update_preview_state,
)
from support.webhooks import event_process, event_receive
from tests import builders
from tests.concurrency import at_once
from tests.publishing import publish_thread_done
from tests.support.sender import SECRET, signed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]


@pytest.fixture
def published(monkeypatch):
    """The tasks published after commit, as (name, args)."""
    sent: list = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: sent.append((name, args)))
    return sent


def received(webhook_id, *, tenant, fingerprint="E-TIMEOUT", at="2026-11-21T09:30:00Z"):
    payload = {
        "type": "incident.error_spike",
        "timestamp": at,
        "data": {
            "tenant_id": tenant,
            "fingerprint": fingerprint,
            "error_rate": 0.2,
            "window_minutes": 5,
            "sample_message": "TimeoutError: upstream took 30s",
        },
    }
    body, headers = signed(payload, webhook_id=webhook_id)
    return event_receive(body=body, headers=headers).event


def spike(webhook_id, *, tenant, fingerprint="E-TIMEOUT"):
    event = received(webhook_id, tenant=tenant, fingerprint=fingerprint)
    assert event_process(event_id=event.pk) == "processed"


def spike_ticket(tenant, fingerprint="E-TIMEOUT") -> Ticket:
    return Ticket.objects.get(tenant_id=tenant, fingerprint=fingerprint, status="open")


def tenants(problem: Problem) -> list[str]:
    return sorted(problem.tickets.values_list("tenant_id", flat=True))


# --- From error spikes ----------------------------------------------------------------


def test_a_spike_at_one_tenant_makes_no_problem(customer):
    spike("msg_1", tenant="acme-7f3a")
    spike("msg_2", tenant="acme-7f3a")

    assert not Problem.objects.exists()
    assert Ticket.objects.get().problem is None


def test_the_same_fingerprint_at_a_second_tenant_makes_one_problem_of_both_tickets(customer):
    spike("msg_1", tenant="acme-7f3a")
    spike("msg_2", tenant="globex-1")

    problem = Problem.objects.get()
    assert (problem.fingerprint, problem.title, problem.status, problem.solved_at) == (
        "E-TIMEOUT",
        "Error spike at several customers: E-TIMEOUT",
        "open",
        None,
    )
    assert tenants(problem) == ["acme-7f3a", "globex-1"]
    made = problem.history.get()
    assert (made.history_actor, made.history_change_reason) == (
        "webhook:msg_2",
        "its error at 2 tenants",
    )
    linked = spike_ticket("acme-7f3a").history.order_by("history_id").last()
    assert (linked.history_actor, linked.history_for, linked.history_change_reason) == (
        "webhook:msg_2",
        f"support.problem:{problem.pk}",
        f"part of problem #{problem.pk}: the same error at several tenants",
    )


def test_a_third_tenant_joins_the_problem_and_later_spikes_add_to_their_tickets(customer):
    spike("msg_1", tenant="acme-7f3a")
    spike("msg_2", tenant="globex-1")
    spike("msg_3", tenant="initech-9")
    spike("msg_4", tenant="acme-7f3a")

    problem = Problem.objects.get()
    assert tenants(problem) == ["acme-7f3a", "globex-1", "initech-9"]
    assert spike_ticket("acme-7f3a").occurrence_count == 2
    third = spike_ticket("initech-9").history.order_by("history_id").last()
    assert third.history_change_reason == (
        f"part of problem #{problem.pk}: its error at another tenant"
    )


def test_another_fingerprint_makes_a_problem_of_its_own(customer):
    for n, tenant in enumerate(["acme-7f3a", "globex-1"]):
        spike(f"msg_a{n}", tenant=tenant)
        spike(f"msg_b{n}", tenant=tenant, fingerprint="E-OOM")

    assert sorted(Problem.objects.values_list("fingerprint", flat=True)) == ["E-OOM", "E-TIMEOUT"]
    for problem in Problem.objects.all():
        assert tenants(problem) == ["acme-7f3a", "globex-1"]
        assert set(problem.tickets.values_list("fingerprint", flat=True)) == {problem.fingerprint}


def test_a_ticket_taken_off_the_problem_stays_off_through_its_later_spikes(customer, agent):
    spike("msg_1", tenant="acme-7f3a")
    spike("msg_2", tenant="globex-1")
    problem = Problem.objects.get()
    problem_unlink(problem=problem, ticket=spike_ticket("globex-1"), by=agent)

    spike("msg_3", tenant="globex-1")
    spike("msg_4", tenant="initech-9")

    assert spike_ticket("globex-1").problem is None
    assert spike_ticket("globex-1").occurrence_count == 2
    assert tenants(problem) == ["acme-7f3a", "initech-9"]


def test_after_a_solve_the_error_at_two_tenants_again_is_a_new_problem(customer, agent):
    spike("msg_1", tenant="acme-7f3a")
    spike("msg_2", tenant="globex-1")
    first = Problem.objects.get()
    problem_solve(problem=first, by=agent)

    spike("msg_3", tenant="acme-7f3a")
    assert Problem.objects.filter(status="open").count() == 0
    spike("msg_4", tenant="globex-1")

    second = Problem.objects.get(status="open")
    assert second.pk != first.pk
    assert [t.status for t in second.tickets.all()] == ["open", "open"]
    assert set(first.tickets.values_list("status", flat=True)) == {"solved"}


def test_the_database_refuses_a_second_open_problem_for_one_fingerprint():
    builders.problem(fingerprint="E-TIMEOUT")
    builders.problem(fingerprint="E-TIMEOUT", status=Problem.Status.SOLVED)  # solved: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        builders.problem(fingerprint="E-TIMEOUT")


@pytest.mark.django_db(transaction=True)
def test_two_tenants_spikes_meeting_before_the_problem_step_make_one_problem(monkeypatch):
    # Each spike waits, its ticket saved, for the other's to be saved too (at most a
    # second): without a lock per fingerprint both would then look for another tenant's
    # ticket, see none committed, and make no problem at all.
    both_saved = threading.Barrier(2)
    problem_step = ticket_events.problem_spike_link

    def meeting(**kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_saved.wait(timeout=1)
        return problem_step(**kwargs)

    monkeypatch.setattr(ticket_events, "problem_spike_link", meeting)
    # Known tenants: two unknown ones would be serialized by creating the "unmatched" tag.
    for i in range(2):
        builders.customer(external_id=f"tenant-{i}")
    events = [received(f"msg_{i}", tenant=f"tenant-{i}") for i in range(2)]

    results = at_once(2, lambda i: event_process(event_id=events[i].pk))

    assert results == ["processed"] * 2
    assert tenants(Problem.objects.get()) == ["tenant-0", "tenant-1"]


@pytest.mark.django_db(transaction=True)
def test_spikes_of_several_tenants_at_once_make_one_problem_of_all_their_tickets():
    count = 4
    for i in range(count):
        builders.customer(external_id=f"tenant-{i}")
    events = [received(f"msg_{i}", tenant=f"tenant-{i}") for i in range(count)]

    results = at_once(count, lambda i: event_process(event_id=events[i].pk))

    assert results == ["processed"] * count
    problem = Problem.objects.get()
    assert tenants(problem) == [f"tenant-{i}" for i in range(count)]
    assert Ticket.objects.filter(problem__isnull=True).count() == 0


# --- By hand ----------------------------------------------------------------------------


def test_support_links_a_ticket_by_hand_and_takes_it_off_again(agent):
    problem = builders.problem()
    ticket = builders.ticket(requester_email="jo@acme.com")

    with acting_as_user(agent):
        said = problem_link(problem=problem, ticket=ticket, by=agent)
    assert said == f"Ticket #{ticket.pk} is now part of problem #{problem.pk}."
    ticket.refresh_from_db()
    assert ticket.problem == problem
    row = ticket.history.order_by("history_id").last()
    assert (row.history_actor, row.history_for, row.history_change_reason) == (
        "sam",
        f"support.problem:{problem.pk}",
        f"linked to problem #{problem.pk} by hand",
    )

    with acting_as_user(agent):
        said = problem_unlink(problem=problem, ticket=ticket, by=agent)
    assert said == f"Ticket #{ticket.pk} is no longer part of problem #{problem.pk}."
    ticket.refresh_from_db()
    assert ticket.problem is None
    assert ticket.history.order_by("history_id").last().history_change_reason == (
        f"taken off problem #{problem.pk} by hand"
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("solved ticket", "is solved: only an open ticket joins a problem."),
        ("other problem", "is part of problem"),
        ("solved problem", "is solved: tickets no longer join it."),
    ],
)
def test_a_link_that_cannot_be_is_refused_and_changes_nothing(agent, setup, message):
    problem = builders.problem()
    ticket = builders.ticket()
    if setup == "solved ticket":
        ticket = builders.ticket(status=Ticket.Status.SOLVED)
    elif setup == "other problem":
        builders.problem(tickets=[ticket])
    else:
        problem = builders.problem(status=Problem.Status.SOLVED)
    before = ticket.problem_id

    with pytest.raises(ProblemActionError, match=message):
        problem_link(problem=problem, ticket=ticket, by=agent)

    ticket.refresh_from_db()
    assert ticket.problem_id == before


def test_an_account_manager_may_not_link_tickets(manager):
    problem = builders.problem()
    ticket = builders.ticket()
    with pytest.raises(ProblemPermissionError):
        problem_link(problem=problem, ticket=ticket, by=manager)
    ticket.refresh_from_db()
    assert ticket.problem is None


# --- Send an update ---------------------------------------------------------------------


@pytest.fixture
def worked(customer):
    """A problem of Acme's and Globex's tickets: two with a requester (one waiting on the
    customer), one from a spike (no requester) and one solved."""
    globex = builders.customer(external_id="globex-1", name="Globex")
    jo = builders.ticket(customer=customer, requester_email="jo@acme.com", subject="Exports fail")
    ann = builders.ticket(
        customer=globex,
        requester_email="ann@globex.example",
        status=Ticket.Status.PENDING,
        subject="Export broken?",
    )
    spiked = builders.ticket(customer=globex, tenant_id="globex-1", fingerprint="E-TIMEOUT")
    done = builders.ticket(
        customer=customer, requester_email="old@acme.com", status=Ticket.Status.SOLVED
    )
    problem = builders.problem(fingerprint="E-TIMEOUT", tickets=[jo, ann, spiked, done])
    return SimpleNamespace(problem=problem, jo=jo, ann=ann, spiked=spiked, done=done)


def test_the_update_preview_lists_who_gets_it_and_who_cannot(worked):
    w = worked
    problem = w.problem
    preview = problem_update_preview(problem=problem)
    assert [t.requester_email for t in preview.recipients] == ["jo@acme.com", "ann@globex.example"]
    assert preview.unreachable == [w.spiked]


def test_an_update_is_one_reply_per_open_ticket_with_a_requester(
    worked, agent, published, django_capture_on_commit_callbacks
):
    w = worked
    problem = w.problem
    token = preview_token(update_preview_state(problem_update_preview(problem=problem)))

    with django_capture_on_commit_callbacks(execute=True), acting_as_user(agent):
        problem_update_send(
            problem=problem,
            body="  We found the cause; a fix ships today.  ",
            by=agent,
            previewed=token,
        )

    replies = list(TicketComment.objects.order_by("ticket_id"))
    assert [(c.ticket_id, c.kind, c.sent_to, c.body, c.author) for c in replies] == [
        (w.jo.pk, "reply", "jo@acme.com", "We found the cause; a fix ships today.", agent),
        (w.ann.pk, "reply", "ann@globex.example", "We found the cause; a fix ships today.", agent),
    ]
    publish_thread_done()  # the after-commit publishes run on kit.publish's thread
    assert sorted(published) == sorted(("support.reply_send", [c.pk]) for c in replies)
    for comment in replies:
        row = comment.history.get()
        assert (row.history_actor, row.history_for, row.history_change_reason) == (
            "sam",
            f"support.problem:{problem.pk}",
            f"update of problem #{problem.pk}",
        )
    w.jo.refresh_from_db()
    assert w.jo.first_responded_at == replies[0].created_at  # the reply service's own effects


def test_an_update_after_the_recipients_changed_is_refused_and_sends_nothing(
    worked, agent, published
):
    w = worked
    problem = w.problem
    token = preview_token(update_preview_state(problem_update_preview(problem=problem)))
    builders.ticket(requester_email="new@initech.example", problem=problem)

    with pytest.raises(ProblemActionError, match="who gets the update"):
        problem_update_send(problem=problem, body="Fixed.", by=agent, previewed=token)

    assert not TicketComment.objects.exists()
    publish_thread_done()
    assert published == []


@pytest.mark.parametrize(
    ("body", "message"),
    [("   ", "Write the update first"), ("Fixed.", "no longer|nothing was sent")],
)
def test_an_empty_update_or_one_to_nobody_is_refused(agent, body, message):
    problem = builders.problem(tickets=[builders.ticket()])  # no requester
    with pytest.raises(ProblemActionError, match=message):
        problem_update_send(problem=problem, body=body, by=agent)
    assert not TicketComment.objects.exists()


def test_an_ops_lead_sends_an_update_though_they_do_not_work_tickets(worked, ops_lead):
    problem = worked.problem
    with acting_as_user(ops_lead):
        problem_update_send(problem=problem, body="Fixed.", by=ops_lead)
    assert TicketComment.objects.count() == 2


def test_an_account_manager_may_not_send_an_update(worked, manager):
    problem = worked.problem
    with pytest.raises(ProblemPermissionError):
        problem_update_send(problem=problem, body="Fixed.", by=manager)
    assert not TicketComment.objects.exists()


# --- Solve ------------------------------------------------------------------------------


def test_solving_solves_the_problem_and_its_open_tickets_with_history(worked, agent):
    w = worked
    problem = w.problem
    token = preview_token(
        solve_preview_state(problem, problems.problem_open_tickets(problem=problem))
    )
    done_history = w.done.history.count()

    with acting_as_user(agent):
        said = problem_solve(problem=problem, by=agent, previewed=token)

    assert said == f"Problem #{problem.pk} is solved, and with it 3 open tickets."
    problem.refresh_from_db()
    assert problem.status == "solved"
    assert problem.solved_at is not None
    for ticket in (w.jo, w.ann, w.spiked):
        ticket.refresh_from_db()
        assert ticket.status == "solved"
        assert ticket.resolution_due_at is None or ticket.sla_due_at is None
        row = ticket.history.order_by("history_id").last()
        assert (row.history_actor, row.history_for, row.history_change_reason, row.status) == (
            "sam",
            f"support.problem:{problem.pk}",
            f"solved with problem #{problem.pk}",
            "solved",
        )
    assert w.done.history.count() == done_history  # already solved: untouched
    row = problem.history.order_by("history_id").last()
    assert (row.status, row.history_actor, row.history_change_reason) == (
        "solved",
        "sam",
        f"solved with problem #{problem.pk}",
    )


def test_solving_twice_is_refused(worked, agent):
    problem = worked.problem
    problem_solve(problem=problem, by=agent)
    with pytest.raises(ProblemActionError, match="solved already"):
        problem_solve(problem=problem, by=agent)


def test_a_solve_after_a_ticket_joined_is_refused_and_solves_nothing(worked, agent):
    w = worked
    problem = w.problem
    token = preview_token(
        solve_preview_state(problem, problems.problem_open_tickets(problem=problem))
    )
    late = builders.ticket(problem=problem)

    with pytest.raises(ProblemActionError, match="the open tickets"):
        problem_solve(problem=problem, by=agent, previewed=token)

    problem.refresh_from_db()
    w.jo.refresh_from_db()
    late.refresh_from_db()
    assert (problem.status, w.jo.status, late.status) == ("open", "open", "open")


def test_an_account_manager_may_not_solve_a_problem(worked, manager):
    w = worked
    problem = w.problem
    with pytest.raises(ProblemPermissionError):
        problem_solve(problem=problem, by=manager)
    problem.refresh_from_db()
    w.jo.refresh_from_db()
    assert (problem.status, w.jo.status) == ("open", "open")


# --- The pages --------------------------------------------------------------------------


def page(problem) -> str:
    return reverse("admin:support_problem_change", args=[problem.pk])


def affected(count: int) -> Problem:
    """A problem with a ticket of each of ``count`` customers, a contract each (the
    first with an old ended one too), and an unknown tenant's ticket."""
    problem = builders.problem(fingerprint="E-TIMEOUT")
    for n in range(count):
        customer = builders.customer(name=f"Customer {n:02}")
        builders.contract(
            customer=customer,
            plan=[Contract.Plan.STARTER, Contract.Plan.GROWTH, Contract.Plan.ENTERPRISE][n % 3],
            monthly_fee=Decimal(100 * (n + 1)),
            end_date=dt.date(2027, 1, 1) + dt.timedelta(days=n),
        )
        if n == 0:
            builders.contract(
                customer=customer,
                monthly_fee=Decimal("9999.00"),
                start_date=dt.date(2024, 1, 1),
                end_date=dt.date(2024, 12, 31),
                status=Contract.Status.ENDED,
            )
        builders.ticket(customer=customer, tenant_id=customer.external_id, problem=problem)
    builders.ticket(tenant_id="ghost-1", problem=problem)
    return problem


def test_the_affected_customers_come_highest_value_first_with_plan_and_renewal():
    problem = affected(3)
    rows = problems.problem_customers(
        tickets=problems.problem_tickets(problem=problem), today=dt.date(2026, 12, 20)
    )
    assert [
        (
            r.customer.name if r.customer else r.tenant_id,
            r.contract.plan if r.contract else None,
            r.value,
            r.contract.end_date if r.contract else None,
            r.renewal_soon,
        )
        for r in rows
    ] == [
        ("Customer 02", "enterprise", Decimal("300.00"), dt.date(2027, 1, 3), True),
        ("Customer 01", "growth", Decimal("200.00"), dt.date(2027, 1, 2), True),
        ("Customer 00", "starter", Decimal("100.00"), dt.date(2027, 1, 1), True),
        ("ghost-1", None, None, None, False),
    ]


def test_the_problem_page_shows_its_customers_in_a_fixed_number_of_queries(client, agent):
    client.force_login(agent)
    small = affected(2)
    with acting_as("test:fixture"):
        small.status, small.solved_at = Problem.Status.SOLVED, small.opened_at
        small.save()
    big = affected(12)

    def count(problem):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(page(problem))
        assert response.status_code == 200
        return len(captured), response.content.decode()

    client.get(page(small))  # warm per-process caches
    (small_count, _), (big_count, html) = count(small), count(big)
    # The session, its user, their permissions (2), the problem, its tickets with
    # their customers and the current contracts' ids, those contracts.
    assert small_count == big_count == 7
    assert html.index("Customer 11") < html.index("Customer 10") < html.index("Customer 00")
    assert "1200.00 EUR" in html
    assert "Send an update…" in html


def test_a_reader_sees_the_problem_without_the_ways_to_work_it(client, manager):
    problem = affected(1)
    client.force_login(manager)
    html = client.get(page(problem)).content.decode()
    assert 'data-testid="problem-customers"' in html
    assert "Send an update…" not in html
    assert client.get(reverse("admin:support_problem_update", args=[problem.pk])).status_code == 403
    assert client.get(reverse("admin:support_problem_solve", args=[problem.pk])).status_code == 403


def test_the_list_counts_tickets_and_tenants(client, agent):
    problem = affected(2)
    client.force_login(agent)
    response = client.get(reverse("admin:support_problem_changelist"))
    assert response.status_code == 200
    row = response.context["cl"].result_list.get(pk=problem.pk)
    assert (row._tickets, row._tenants) == (3, 3)


def test_the_update_page_sends_what_it_previewed(client, agent, worked, published):
    w = worked
    problem = w.problem
    client.force_login(agent)
    url = reverse("admin:support_problem_update", args=[problem.pk])
    page_html = client.get(url)
    assert [t.pk for t in page_html.context["preview"].recipients] == [w.jo.pk, w.ann.pk]
    token = page_html.context["form"].initial["previewed"]

    response = client.post(url, {"body": "Fixed now.", "previewed": token})

    assert response.status_code == 302
    assert TicketComment.objects.filter(body="Fixed now.").count() == 2


def test_the_update_page_says_why_it_refused_and_keeps_the_text(client, agent, worked):
    problem = worked.problem
    client.force_login(agent)
    url = reverse("admin:support_problem_update", args=[problem.pk])
    response = client.post(url, {"body": "Fixed now.", "previewed": "tampered"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "This changed since you opened the preview" in html
    assert "Fixed now." in html
    assert not TicketComment.objects.exists()


def test_the_solve_page_solves_what_it_previewed(client, ops_lead, worked):
    w = worked
    problem = w.problem
    client.force_login(ops_lead)
    url = reverse("admin:support_problem_solve", args=[problem.pk])
    token = client.get(url).context["form"].initial["previewed"]

    response = client.post(url, {"previewed": token})

    assert response.status_code == 302
    w.jo.refresh_from_db()
    assert w.jo.status == "solved"


@pytest.mark.parametrize("value", ["abc", "0", "99999999999999999999999", ""])
def test_linking_a_ticket_number_that_is_not_one_says_so(client, agent, value):
    problem = builders.problem()
    client.force_login(agent)
    response = client.post(
        reverse("admin:support_problem_link", args=[problem.pk]), {"ticket": value}, follow=True
    )
    assert response.status_code == 200
    assert "Nothing changed." in response.content.decode()
    assert not problem.tickets.exists()


def test_the_ticket_page_names_its_problem_and_does_not_edit_it(client, agent):
    ticket = builders.ticket(requester_email="jo@acme.com")
    problem = builders.problem(tickets=[ticket])
    client.force_login(agent)
    response = client.get(reverse("admin:support_ticket_change", args=[ticket.pk]))
    html = response.content.decode()
    assert f"part of problem #{problem.pk}" in html
    assert "problem" not in response.context["adminform"].form.fields
