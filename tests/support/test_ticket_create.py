"""Tickets change only through their services (support.tickets), whatever the page.

A ticket added in the admin is opened by ``ticket_create``: it gets its first-response
deadline and is triaged. The ticket page's status, priority, assignee and tags are
applied by the services (``ticket_update``), never saved from the form, and each service
checks inside that the person may work tickets (``by=None``, the system, only outside a
person's request).
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.urls import reverse

from audit.context import acting_as, acting_as_user
from support import tickets
from support.models import Tag, Ticket, TriageCondition, TriageRule
from tests import builders

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)  # a Saturday
# Business hours (the default service levels) start again on Monday at 09:00.
MONDAY = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
ADD = "/admin/support/ticket/add/"


def change_url(ticket: Ticket) -> str:
    return f"/admin/support/ticket/{ticket.pk}/change/"


def act_url(ticket: Ticket) -> str:
    return f"/admin/support/ticket/{ticket.pk}/act/"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def make_ticket(subject: str = "Cannot log in", **fields) -> Ticket:
    with acting_as("test:fixture"), time_machine.travel(NOW, tick=False):
        return builders.ticket(
            subject=subject,
            requester_email="pat@acme.com",
            first_response_due_at=NOW + dt.timedelta(hours=8),
            **fields,
        )


def stored(ticket: Ticket) -> tuple:
    ticket.refresh_from_db()
    return (
        ticket.subject,
        ticket.status,
        ticket.priority,
        ticket.assignee_id,
        sorted(ticket.tags.values_list("name", flat=True)),
        ticket.first_response_due_at,
    )


@pytest.fixture
def billing_rule(db, agent) -> TriageRule:
    """Billing questions go to the billing queue, tagged billing, to Sam."""
    with acting_as("test:fixture"):
        rule = TriageRule.objects.create(
            name="Billing questions", assign_queue="billing", assign_to=agent
        )
        TriageCondition.objects.create(
            rule=rule, field=TriageCondition.Field.SUBJECT, operator="contains", value="invoice"
        )
        rule.add_tags.add(Tag.objects.create(name="billing"))
    return rule


def test_a_ticket_added_in_the_admin_gets_its_deadline_and_is_triaged(
    client, agent, customer, billing_rule
):
    client.force_login(agent)

    with time_machine.travel(NOW, tick=False):
        response = client.post(
            ADD,
            {
                "subject": "Wrong invoice for October",
                "message": "Called in: charged for 60 seats.",
                "requester_name": "Pat",
                "requester_email": "pat@acme.com",
                "customer": customer.pk,
                "category": "billing",
                "priority": "urgent",
                "_save": "Save",
            },
        )

    assert response.status_code == 302
    ticket = Ticket.objects.get()
    assert (
        ticket.subject,
        ticket.customer,
        ticket.tenant_id,
        ticket.category,
        ticket.priority,
        ticket.status,
        ticket.created_at,
        ticket.first_response_due_at,
        ticket.queue,
        ticket.assignee,
        list(ticket.tags.values_list("name", flat=True)),
    ) == (
        "Wrong invoice for October",
        customer,
        "acme-7f3a",
        "billing",
        "urgent",
        "open",
        NOW,
        MONDAY + dt.timedelta(hours=10),  # urgent: 1 business hour
        "billing",
        agent,
        ["billing"],
    )
    assert [
        (row.history_type, row.history_actor, row.history_change_reason)
        for row in ticket.history.order_by("pk")
    ] == [
        ("+", "sam", None),
        # Triage, naming its rules: the ticket's fields, then its tags.
        ("~", "sam", "triage: Billing questions"),
        ("~", "sam", "triage: Billing questions"),
    ]


def test_the_add_form_offers_only_what_opening_a_ticket_takes(client, agent):
    client.force_login(agent)

    form = client.get(ADD).context["adminform"].form

    assert sorted(form.fields) == [
        "category",
        "customer",
        "message",
        "priority",
        "requester_email",
        "requester_name",
        "subject",
    ]


def test_the_ticket_page_sets_status_priority_assignee_and_tags_through_the_services(client, agent):
    """Even posted without the page (no value it showed to compare with), the fields go
    through ``ticket_update``: the status, then the priority (a solved ticket's first
    response stopped at normal's deadline); the subject is not a field."""
    ticket = make_ticket()
    vip = Tag.objects.create(name="vip")
    client.force_login(agent)

    response = client.post(
        change_url(ticket),
        {
            "subject": "Cannot log in (SSO)",
            "category": "access",
            "queue": "",
            "customer": "",
            "status": "solved",
            "priority": "urgent",
            "assignee": agent.pk,
            "tags": [vip.pk],
        },
    )

    assert response.status_code == 302
    assert stored(ticket) == (
        "Cannot log in",
        "solved",
        "urgent",
        agent.pk,
        ["vip"],
        MONDAY + dt.timedelta(hours=17),
    )


def test_raising_the_priority_on_the_ticket_page_moves_the_deadline(client, agent):
    ticket = make_ticket()
    client.force_login(agent)

    response = client.post(
        act_url(ticket), {"action": "priority", "priority": "urgent", "next": change_url(ticket)}
    )

    assert response.status_code == 302
    assert response["Location"] == change_url(ticket)
    assert stored(ticket)[2:] == ("urgent", None, [], MONDAY + dt.timedelta(hours=10))
    assert messages_of(response) == ["“Cannot log in” now has priority urgent."]


def test_the_ticket_page_sets_status_assignee_and_removes_tags(client, agent, superuser):
    ticket = make_ticket(assignee=agent)
    ticket.tags.add(Tag.objects.create(name="vip"))
    client.force_login(superuser)

    steps = [
        {"action": "status", "status": "pending"},
        {"action": "assign", "assignee": superuser.pk},
        {"action": "untag", "tag": "vip"},
    ]
    said = [messages_of(client.post(act_url(ticket), step))[-1] for step in steps]

    assert stored(ticket)[1:5] == ("pending", "normal", superuser.pk, [])
    assert said == [
        "“Cannot log in” is now waiting on customer.",
        "“Cannot log in” is now assigned to Root (taken over from Sam).",
        "“Cannot log in” is no longer tagged vip.",
    ]
    client.post(act_url(ticket), {"action": "assign", "assignee": ""})
    assert stored(ticket)[3] is None


def test_a_ticket_is_not_given_to_someone_who_may_not_work_tickets(client, agent, manager):
    ticket = make_ticket()
    client.force_login(agent)

    response = client.post(act_url(ticket), {"action": "assign", "assignee": manager.pk})

    assert stored(ticket)[3] is None
    assert messages_of(response)[0].startswith("Nothing changed. assignee: Select a valid choice.")


def test_reopening_an_error_spike_while_another_tracks_it_says_why(client, agent):
    solved = make_ticket(tenant_id="t1", fingerprint="E42", status="solved")
    make_ticket(tenant_id="t1", fingerprint="E42")
    client.force_login(agent)

    response = client.post(act_url(solved), {"action": "status", "status": "open"})

    assert stored(solved)[1] == "solved"
    assert messages_of(response) == [
        "Nothing changed. “Cannot log in” can't be reopened: another open ticket tracks the"
        " same error."
    ]


SERVICES = {
    "assign": lambda ticket, by: tickets.ticket_assign(ticket=ticket, assignee=by, by=by),
    "unassign": lambda ticket, by: tickets.ticket_unassign(ticket=ticket, by=by),
    "priority": lambda ticket, by: tickets.ticket_set_priority(
        ticket=ticket, priority="urgent", by=by
    ),
    "status": lambda ticket, by: tickets.ticket_set_status(ticket=ticket, status="closed", by=by),
    "resolve": lambda ticket, by: tickets.ticket_resolve(ticket=ticket, by=by),
    "tag": lambda ticket, by: tickets.ticket_add_tag(
        ticket=ticket, tag=Tag.objects.get(name="vip"), by=by
    ),
    "untag": lambda ticket, by: tickets.ticket_remove_tag(
        ticket=ticket, tag=Tag.objects.get(name="vip"), by=by
    ),
    "comment": lambda ticket, by: tickets.ticket_comment(
        ticket=ticket, author=by, kind="note", body="hello"
    ),
    "create": lambda ticket, by: tickets.ticket_create(subject="By hand", by=by),
    "update": lambda ticket, by: tickets.ticket_update(
        ticket=ticket, by=by, changes={"priority": "urgent"}, comment_kind="note", body="hi"
    ),
}


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("persona", ["manager", "ops_lead", "outsider"])
def test_the_ticket_services_refuse_who_may_not_work_tickets(request, service, persona):
    user = request.getfixturevalue(persona)
    ticket = make_ticket(assignee=request.getfixturevalue("agent"))
    ticket.tags.add(Tag.objects.create(name="vip"))
    before = (stored(ticket), Ticket.objects.count(), Ticket.history.count())

    with acting_as_user(user), pytest.raises(tickets.TicketPermissionError) as refused:
        SERVICES[service](ticket, user)

    assert str(refused.value).startswith("You may not do this: it needs the permission support.")
    assert (stored(ticket), Ticket.objects.count(), Ticket.history.count()) == before


@pytest.mark.parametrize("service", ["unassign", "priority", "status", "resolve", "create"])
def test_a_persons_request_cannot_act_as_the_system(agent, service):
    ticket = make_ticket(assignee=agent)
    before = (stored(ticket), Ticket.objects.count())

    with acting_as_user(agent), pytest.raises(tickets.TicketPermissionError) as refused:
        SERVICES[service](ticket, None)

    assert str(refused.value) == (
        "A person's request must name who acts: only the system acts as nobody."
    )
    assert (stored(ticket), Ticket.objects.count()) == before


def test_the_system_acts_on_tickets_as_nobody(agent):
    ticket = make_ticket(assignee=agent)

    with acting_as("task:escalate"), time_machine.travel(NOW, tick=False):
        tickets.ticket_set_priority(ticket=ticket, priority="high", by=None)
        opened = tickets.ticket_create(subject="From a task", priority="low", by=None)

    assert stored(ticket)[2] == "high"
    assert (opened.first_response_due_at, opened.history.first().history_actor) == (
        MONDAY + dt.timedelta(days=2, hours=17),  # low: 24 business hours, Wednesday 17:00
        "task:escalate",
    )


def test_an_account_manager_cannot_add_a_ticket_in_the_admin(client, manager):
    client.force_login(manager)

    response = client.post(ADD, {"subject": "Hello", "category": "other", "priority": "urgent"})

    assert response.status_code == 403
    assert Ticket.objects.count() == 0


def test_a_ticket_opened_by_hand_keeps_its_subject_on_one_line(agent):
    ticket = tickets.ticket_create(subject="  Phoned in:\r\nexport broken ", by=agent)
    assert ticket.subject == "Phoned in: export broken"


@pytest.mark.parametrize("subject", ["\x07", "\x1b\x1b"])
def test_a_subject_of_control_characters_alone_is_a_form_error_not_a_500(client, agent, subject):
    client.force_login(agent)

    response = client.post(
        reverse("admin:support_ticket_add"),
        {"subject": subject, "message": "m", "category": "other", "priority": "normal"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["subject"] == ["Give the ticket a subject."]
    assert Ticket.objects.count() == 0
