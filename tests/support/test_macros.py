"""Macros (docs/product.md#macros): written as data with their placeholders checked when
saved, previewed on a ticket exactly as they apply, applied all or nothing as one entry of
the ticket's history naming the macro, the "reissue the code and send it" workflow through
the entitlement service and its permission, a stale preview refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.context import acting_as, acting_as_user
from customers.models import Entitlement
from support import macros, tickets
from support.models import MACRO_PLACEHOLDERS, Macro, Tag, Ticket, TicketComment
from tests import builders
from tests.pages import messages_of
from tests.personas import staff_user
from tests.publishing import publish_thread_done
from tests.support.ticket_pages import make_ticket, page

pytestmark = pytest.mark.django_db

ALLOWED = ", ".join(f"{{{name}}}" for name in MACRO_PLACEHOLDERS)
CODE = "7T3W-GQRW-TS2H"


def preview_url(ticket: Ticket, macro: Macro | None = None) -> str:
    url = reverse("admin:support_ticket_macro", args=[ticket.pk])
    return f"{url}?macro={macro.pk}" if macro else url


def checked(**fields) -> Macro:
    """An unsaved macro as the admin's form would check it."""
    macro = Macro(name="Checked", **fields)
    macro.full_clean()
    return macro


def reply_errors(reply: str, **fields) -> list[str]:
    with pytest.raises(ValidationError) as refused:
        checked(reply=reply, **fields)
    return refused.value.message_dict["reply"]


@pytest.fixture
def published(monkeypatch):
    sent = []
    monkeypatch.setattr("kit.publish._publish", lambda name, args: sent.append((name, args)))
    return sent


@pytest.fixture
def tags(db):
    with acting_as("test:fixture"):
        return {name: Tag.objects.get_or_create(name=name)[0] for name in ("billing", "vip")}


@pytest.fixture
def ticket(customer, tags):
    """Pat's (pat@acme.com) open ticket at Acme, normal priority, unassigned, tagged vip."""
    made = make_ticket("Cannot log in <b>now</b>", customer=customer, queue="")
    with acting_as("test:fixture"):
        made.tags.add(tags["vip"])
    return made


@pytest.fixture
def seat(customer):
    """Acme's Pro seat assigned to Pat (the requester), code 7T3W-GQRW-TS2H."""
    with acting_as("test:fixture"):
        return builders.entitlement(
            customer=customer,
            product=builders.product(sku="SEAT-PRO-1Y", name="Pro seat, 1 year"),
            code=CODE,
            state=Entitlement.State.ASSIGNED,
            assignee_email="pat@acme.com",
        )


@pytest.fixture
def reissue(db):
    with acting_as("test:fixture"):
        return builders.macro(
            name="Reissue code",
            reply="Hi {requester_name}, your new code is {new_code}. {agent}",
            workflow=Macro.Workflow.REISSUE_CODE,
        )


@pytest.fixture
def entitled_agent(db):
    """Erin: support, who may also revoke and reissue codes."""
    erin = staff_user("erin", "Support")
    erin.user_permissions.add(
        Permission.objects.get(content_type__app_label="customers", codename="change_entitlement")
    )
    return erin


def set_fields(obj, **fields) -> None:
    """Change a record behind the services' back (with its history), as a test's setup."""
    with acting_as("test:fixture"):
        for name, value in fields.items():
            setattr(obj, name, value)
        obj.save()


def stored(ticket: Ticket) -> tuple:
    ticket.refresh_from_db()
    return (
        ticket.status,
        ticket.priority,
        ticket.assignee_id,
        ticket.queue,
        sorted(ticket.tags.values_list("name", flat=True)),
        list(ticket.comments.values_list("kind", "body")),
        ticket.history.count(),
    )


def preview_of(ticket: Ticket, macro: Macro, by) -> macros.MacroPreview:
    return macros.macro_preview_for(ticket_id=ticket.pk, macro_id=macro.pk, by=by)


def apply(ticket: Ticket, macro: Macro, by, previewed: str | None = None) -> list[str]:
    if previewed is None:
        previewed = preview_of(ticket, macro, by).token
    with acting_as_user(by):
        return macros.macro_apply(ticket=ticket, macro=macro, by=by, previewed=previewed)


# --- Placeholders, checked when the macro is saved -------------------------------------


def test_a_reply_may_use_every_placeholder_and_literal_braces():
    every = " ".join(f"{{{name}}}" for name in MACRO_PLACEHOLDERS)
    checked(reply=f"{{{{ {every} }}}}")
    checked(reply="{ticket_number}")  # alone, at both edges
    checked(reply="")  # no reply: a macro of changes only


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("Hi {customer_name}", f"Unknown placeholder {{customer_name}}. Allowed: {ALLOWED}."),
        ("{Customer}", f"Unknown placeholder {{Customer}}. Allowed: {ALLOWED}."),
        ("{customer.name}", f"Unknown placeholder {{customer.name}}. Allowed: {ALLOWED}."),
        ("{customer[0]}", f"Unknown placeholder {{customer[0]}}. Allowed: {ALLOWED}."),
        ("{}", f"Unknown placeholder {{}}. Allowed: {ALLOWED}."),
        ("{0}", f"Unknown placeholder {{0}}. Allowed: {ALLOWED}."),
        ("{ customer }", f"Unknown placeholder {{ customer }}. Allowed: {ALLOWED}."),
        ("{customer!r}", "Write the placeholder as {customer}, without a format or conversion."),
        ("{customer:>30}", "Write the placeholder as {customer}, without a format or conversion."),
        (
            "Hi {customer",
            "The placeholders cannot be read (expected '}' before end of string). "
            "Write a literal brace as {{ or }}.",
        ),
        (
            "50% off }",
            "The placeholders cannot be read (Single '}' encountered in format string). "
            "Write a literal brace as {{ or }}.",
        ),
    ],
)
def test_a_reply_whose_placeholder_cannot_be_filled_is_refused_naming_it(reply, error):
    assert reply_errors(reply) == [error]


def test_each_unknown_placeholder_is_named_once():
    assert reply_errors("{a} {b} {a}") == [
        f"Unknown placeholder {{a}}. Allowed: {ALLOWED}.",
        f"Unknown placeholder {{b}}. Allowed: {ALLOWED}.",
    ]


def test_the_new_code_is_refused_without_its_workflow():
    assert reply_errors("Your code: {new_code}") == [
        "{new_code} is filled by the workflow “Reissue the code and send it” only: "
        "choose that workflow, or take the placeholder out."
    ]
    checked(reply="Your code: {new_code}", workflow=Macro.Workflow.REISSUE_CODE)


@pytest.mark.parametrize("reply", ["Your code is on its way.", "Literally {{new_code}}", ""])
def test_the_workflow_needs_the_new_code_in_its_reply(reply):
    assert reply_errors(reply, workflow=Macro.Workflow.REISSUE_CODE) == [
        "“Reissue the code and send it” sends the new code in the reply: put {new_code} in it."
    ]


def test_the_workflow_solves_so_another_status_is_refused():
    with pytest.raises(ValidationError) as refused:
        checked(reply="{new_code}", workflow=Macro.Workflow.REISSUE_CODE, set_status="pending")
    assert refused.value.message_dict == {
        "set_status": [
            "“Reissue the code and send it” leaves the ticket solved: leave the status "
            "empty or choose Solved."
        ]
    }
    checked(reply="{new_code}", workflow=Macro.Workflow.REISSUE_CODE, set_status="solved")


def test_assigning_to_a_person_names_one(agent):
    with pytest.raises(ValidationError) as refused:
        checked(assign=Macro.Assign.PERSON)
    assert refused.value.message_dict == {
        "assignee": ["Choose the person to assign the ticket to."]
    }
    with pytest.raises(ValidationError) as refused:
        checked(assign=Macro.Assign.ME, assignee=agent)
    assert refused.value.message_dict == {
        "assignee": ['Name a person only when "assign" is "the person below".']
    }


def test_the_admin_refuses_an_unknown_placeholder_and_saves_nothing(client, agent):
    client.force_login(agent)
    response = client.post(
        reverse("admin:support_macro_add"),
        {"name": "Welcome", "is_active": "on", "reply": "Hello {customer_name}", "assign": ""},
    )
    assert response.status_code == 200
    assert "Unknown placeholder {customer_name}. Allowed: {ticket_number}" in (
        response.content.decode()
    )
    assert not Macro.objects.exists()


def test_the_admin_refuses_a_tag_both_added_and_removed_and_a_macro_that_does_nothing(
    client, agent, tags
):
    client.force_login(agent)
    url = reverse("admin:support_macro_add")
    vip = tags["vip"].pk
    both = client.post(url, {"name": "Both", "add_tags": [vip], "remove_tags": [vip]})
    nothing = client.post(url, {"name": "Nothing", "reply": "  "})
    assert "vip: a tag is added or removed, not both." in both.content.decode()
    assert (
        "The macro does nothing yet: write a reply, choose a change or a workflow."
        in nothing.content.decode()
    )
    assert not Macro.objects.exists()


def test_support_writes_a_macro_in_the_admin_with_history(client, agent, tags):
    client.force_login(agent)
    response = client.post(
        reverse("admin:support_macro_add"),
        {
            "name": "Escalate",
            "is_active": "on",
            "reply": "Hi {requester_name}, {agent} took this on.",
            "set_priority": "urgent",
            "add_tags": [tags["billing"].pk],
            "remove_tags": [tags["vip"].pk],
            "set_queue": "billing",
            "assign": "me",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    macro = Macro.objects.get()
    assert (macro.set_priority, macro.assign, macro.set_queue) == ("urgent", "me", "billing")
    assert list(macro.add_tags.values_list("name", flat=True)) == ["billing"]
    assert macro.history.first().history_actor == "sam"
    listed = client.get(reverse("admin:support_macro_changelist")).content.decode()
    assert "reply; priority → Urgent; tags +billing -vip; queue → billing; assign → whoever" in (
        listed
    )


# --- Preview and application ------------------------------------------------------------


@pytest.fixture
def escalate(db, tags, agent):
    with acting_as("test:fixture"):
        return builders.macro(
            name="Escalate",
            reply="Hi {requester_name}, #{ticket_number} ({ticket_subject}) at {customer} "
            "is with {assignee} now. {agent}, {{support}}",
            set_priority=Ticket.Priority.URGENT,
            set_status=Ticket.Status.PENDING,
            set_queue="billing desk",
            assign=Macro.Assign.ME,
            add_tags=[tags["billing"]],
            remove_tags=[tags["vip"]],
        )


def test_the_preview_shows_the_reply_as_sent_and_each_change(ticket, escalate, agent):
    preview = preview_of(ticket, escalate, agent)

    assert preview.reply == (
        f"Hi Pat, #{ticket.pk} (Cannot log in <b>now</b>) at Acme Corp is with Sam now. "
        "Sam, {support}"
    )
    assert [(c.label, c.old, c.new, c.changes) for c in preview.changes] == [
        ("Priority", "Normal", "Urgent", True),
        ("Assignee", "nobody", "Sam", True),
        ("Tags", "vip", "billing", True),
        ("Queue", "none", "billing desk", True),
        ("Status", "Open", "Waiting on customer", True),
    ]
    assert (preview.steps, preview.blocked, preview.refused) == ([], [], [])


def test_applying_does_exactly_what_the_preview_showed(
    ticket, escalate, agent, published, django_capture_on_commit_callbacks
):
    preview = preview_of(ticket, escalate, agent)

    with django_capture_on_commit_callbacks(execute=True):
        done = apply(ticket, escalate, agent, preview.token)
    publish_thread_done()

    ticket.refresh_from_db()
    shown = {change.name: change.new for change in preview.changes}
    assert {
        "priority": ticket.get_priority_display(),
        "assignee": ticket.assignee.get_full_name(),
        "tags": ", ".join(ticket.tags.values_list("name", flat=True)),
        "queue": ticket.queue,
        "status": ticket.get_status_display(),
    } == shown
    reply = ticket.comments.get()
    assert (reply.kind, reply.body, reply.sent_to, reply.author) == (
        TicketComment.Kind.REPLY,
        preview.reply,
        "pat@acme.com",
        agent,
    )
    assert published == [("support.reply_send", [reply.pk])]
    subject = "“Cannot log in <b>now</b>”"
    assert done == [
        f"{subject} now has priority urgent.",
        f"{subject} is now assigned to Sam.",
        f"{subject} is tagged billing.",
        f"{subject} is no longer tagged vip.",
        f"{subject} now has queue “billing desk”.",
        "Reply recorded; it is being sent to pat@acme.com.",
        f"{subject} is now waiting on customer.",
    ]


def test_the_ticket_gets_one_history_entry_naming_the_macro(ticket, escalate, agent, published):
    before = ticket.history.count()

    apply(ticket, escalate, agent)

    assert ticket.history.count() == before + 1
    row = ticket.history.first()
    assert (row.history_change_reason, row.history_actor, row.history_type) == (
        "macro: Escalate",
        "sam",
        "~",
    )
    changed = row.diff_against(row.prev_record, excluded_fields=["tags"]).changed_fields
    assert {"status", "priority", "assignee", "queue", "first_responded_at"} <= set(changed)
    assert sorted(row.tags.values_list("tag__name", flat=True)) == ["billing"]
    assert sorted(row.prev_record.tags.values_list("tag__name", flat=True)) == ["vip"]
    comment = TicketComment.history.get()
    assert comment.history_change_reason == "macro: Escalate"


def test_the_ticket_page_applies_it_and_says_what_was_done(
    client, ticket, escalate, agent, published
):
    client.force_login(agent)
    page_html = client.get(preview_url(ticket, escalate)).content.decode()
    assert "Cannot log in &lt;b&gt;now&lt;/b&gt;" in page_html
    token = client.get(preview_url(ticket, escalate)).context["preview"].token

    response = client.post(preview_url(ticket), {"macro": escalate.pk, "previewed": token})

    assert response.status_code == 302
    assert response["Location"] == page(ticket) + "#conversation"
    [said] = messages_of(response)
    assert said.startswith(
        f'On <a class="od-message-link" href="{page(ticket)}">#{ticket.pk}</a>: '
        "“Escalate” applied. “Cannot log in &lt;b&gt;now&lt;/b&gt;” now has priority urgent."
    )
    assert stored(ticket)[:2] == ("pending", "urgent")


def test_a_stale_preview_is_refused_says_what_changed_and_changes_nothing(
    ticket, escalate, agent, ops_lead
):
    token = preview_of(ticket, escalate, agent).token
    with acting_as("test:someone else"):
        tickets.ticket_set_priority(ticket=ticket, priority="high", by=None)
    before = stored(ticket)

    with pytest.raises(macros.MacroError) as refused:
        apply(ticket, escalate, agent, token)

    assert str(refused.value) == (
        f"This changed since you opened the preview: ticket #{ticket.pk}: its priority; "
        "review it again."
    )
    assert stored(ticket) == before


def test_a_macro_edited_since_the_preview_is_refused(ticket, escalate, agent):
    token = preview_of(ticket, escalate, agent).token
    with acting_as("test:someone else"):
        escalate.set_queue = "elsewhere"
        escalate.save()
    before = stored(ticket)

    with pytest.raises(macros.MacroError) as refused:
        apply(ticket, escalate, agent, token)

    assert str(refused.value) == (
        "This changed since you opened the preview: the macro “Escalate”: its queue; "
        "review it again."
    )
    assert stored(ticket) == before


def test_the_same_preview_applied_twice_sends_one_reply(
    ticket, escalate, agent, published, django_capture_on_commit_callbacks
):
    token = preview_of(ticket, escalate, agent).token
    with django_capture_on_commit_callbacks(execute=True):
        apply(ticket, escalate, agent, token)
        after = stored(ticket)
        with pytest.raises(macros.MacroError, match="This changed since you opened the preview"):
            apply(ticket, escalate, agent, token)
    publish_thread_done()

    assert stored(ticket) == after
    assert len(published) == 1


def test_a_page_opened_before_a_change_shows_the_refusal_and_the_ticket_as_it_is_now(
    client, ticket, escalate, agent, published
):
    client.force_login(agent)
    token = client.get(preview_url(ticket, escalate)).context["preview"].token
    with acting_as("test:someone else"):
        tickets.ticket_assign(ticket=ticket, assignee=agent, by=None)

    response = client.post(preview_url(ticket), {"macro": escalate.pk, "previewed": token})

    assert response.status_code == 200
    assert response.context["refusal"] == (
        f"This changed since you opened the preview: ticket #{ticket.pk}: its assignee; "
        "review it again."
    )
    fresh = response.context["preview"]
    assert ("Assignee", "Sam", "Sam", False) in [
        (c.label, c.old, c.new, c.changes) for c in fresh.changes
    ]
    assert not ticket.comments.exists()
    again = client.post(preview_url(ticket), {"macro": escalate.pk, "previewed": fresh.token})
    assert again.status_code == 302
    assert ticket.comments.count() == 1


@pytest.mark.parametrize(
    ("fields", "blocked"),
    [
        (
            {"requester_email": ""},
            "The ticket has no requester email, so the macro's reply cannot be sent.",
        ),
        ({"is_active": False}, "The macro “Thanks” is not active."),
    ],
)
def test_a_macro_that_cannot_apply_says_why_and_is_refused(ticket, agent, fields, blocked):
    with acting_as("test:fixture"):
        macro = builders.macro(name="Thanks", is_active=fields.pop("is_active", True))
    set_fields(ticket, **fields)
    before = stored(ticket)

    preview = preview_of(ticket, macro, agent)

    assert preview.blocked == [blocked]
    with pytest.raises(macros.MacroError, match="^" + blocked.replace("(", r"\(")):
        apply(ticket, macro, agent, preview.token)
    assert stored(ticket) == before


def test_a_macro_that_would_change_nothing_is_not_applied(ticket, agent):
    with acting_as("test:fixture"):
        macro = builders.macro(name="Normal", reply="", set_priority="normal")
    assert preview_of(ticket, macro, agent).blocked == [
        "The ticket is already as “Normal” would leave it: applying it would change nothing."
    ]


def test_a_reply_only_macro_still_leaves_its_one_entry(ticket, agent, published):
    with acting_as("test:fixture"):
        macro = builders.macro(name="Thanks")
    # Answered before: the reply moves no clock, so no service saves the ticket.
    set_fields(ticket, first_responded_at=ticket.created_at)
    before = ticket.history.count()

    apply(ticket, macro, agent)

    assert ticket.history.count() == before + 1
    assert ticket.history.first().history_change_reason == "macro: Thanks"
    assert ticket.comments.get().body == "Thanks, Pat."


def test_a_refused_step_rolls_everything_back(ticket, agent, tags):
    """An error-spike ticket cannot be reopened while another open one tracks the error:
    the reply and tags written before that step are undone."""
    set_fields(ticket, status="solved", tenant_id="t-1", fingerprint="E1")
    with acting_as("test:fixture"):
        make_ticket("Same error", tenant_id="t-1", fingerprint="E1")
        macro = builders.macro(name="Reopen", set_status="open", add_tags=[tags["billing"]])
    before = stored(ticket)

    with pytest.raises(macros.MacroError) as refused:
        apply(ticket, macro, agent)

    assert "can't be reopened: another open ticket tracks the same error" in str(refused.value)
    assert stored(ticket) == before


# --- The workflow: reissue the code and send it -----------------------------------------


def test_the_workflow_reissues_the_requesters_code_sends_it_and_solves(
    ticket, seat, reissue, entitled_agent, published
):
    preview = preview_of(ticket, reissue, entitled_agent)
    assert preview.steps == [
        f"Revoke {CODE} (Pro seat, 1 year, assigned, pat@acme.com): the code stops working.",
        "Issue a new entitlement of the same order, product and term in its place, with a "
        "fresh code, assigned to pat@acme.com.",
        "Put the new code into the reply.",
    ]
    assert preview.reply == f"Hi Pat, your new code is {macros.NEW_CODE_SLOT}. Erin"
    assert [(c.label, c.new) for c in preview.changes] == [("Status", "Solved")]
    history_before = ticket.history.count()

    done = apply(ticket, reissue, entitled_agent, preview.token)

    seat.refresh_from_db()
    new = Entitlement.objects.exclude(pk=seat.pk).get()
    assert (seat.state, new.state, new.assignee_email, new.product_id) == (
        "revoked",
        "assigned",
        "pat@acme.com",
        seat.product_id,
    )
    assert ticket.comments.get().body == preview.reply.replace(macros.NEW_CODE_SLOT, new.code)
    assert stored(ticket)[0] == "solved"
    assert done[0] == f"{CODE} revoked; {new.code} issued in its place, assigned to pat@acme.com."
    assert ticket.history.count() == history_before + 1
    assert ticket.history.first().history_change_reason == "macro: Reissue code"
    revoked = seat.history.first()
    assert (revoked.history_change_reason, revoked.history_for, revoked.history_actor) == (
        f"macro: Reissue code (ticket #{ticket.pk})",
        f"support.ticket:{ticket.pk}",
        "erin",
    )


def test_without_the_entitlement_permission_the_preview_says_so_and_applying_is_refused(
    ticket, seat, reissue, agent
):
    preview = preview_of(ticket, reissue, agent)
    assert preview.refused == [
        "You may not revoke and reissue codes (it needs the permission "
        "customers.change_entitlement): applying this macro would be refused. "
        "Ask an ops lead to reissue the code."
    ]
    assert not preview.can_apply
    before = (stored(ticket), Entitlement.objects.count(), seat.history.count())

    with pytest.raises(macros.MacroError) as refused:
        apply(ticket, reissue, agent, preview.token)

    # The entitlement service's own refusal.
    assert str(refused.value) == (
        "You may not do this: it needs the permission customers.change_entitlement"
    )
    seat.refresh_from_db()
    assert seat.state == "assigned"
    assert (stored(ticket), Entitlement.objects.count(), seat.history.count()) == before


def test_the_workflow_finds_the_requesters_seat_whatever_the_case_of_the_email(
    ticket, seat, reissue, entitled_agent
):
    set_fields(ticket, requester_email="Pat@ACME.com")
    assert preview_of(ticket, reissue, entitled_agent).entitlement == seat


def test_no_seat_or_several_seats_block_the_workflow(
    customer, ticket, seat, reissue, entitled_agent
):
    with acting_as("test:fixture"):
        other = builders.entitlement(
            customer=customer, state="redeemed", assignee_email="pat@acme.com", code="SECOND-1"
        )
    several = preview_of(ticket, reissue, entitled_agent)
    assert several.blocked == [
        "Acme Corp has 2 live entitlements assigned to pat@acme.com "
        f"({CODE}, SECOND-1): the macro cannot tell which code to reissue. Reissue it from "
        "the entitlement's page, then reply."
    ]
    with pytest.raises(macros.MacroError, match="cannot tell which code"):
        apply(ticket, reissue, entitled_agent, several.token)

    for each in (seat, other):
        set_fields(each, state="revoked", revoked_at=each.issued_at, revoke_reason="left")
    assert preview_of(ticket, reissue, entitled_agent).blocked == [
        "Acme Corp has no live entitlement assigned to pat@acme.com: there is no code to reissue."
    ]
    assert Entitlement.objects.count() == 2


def test_the_workflow_needs_a_customer(ticket, reissue, entitled_agent):
    set_fields(ticket, customer=None)
    assert preview_of(ticket, reissue, entitled_agent).blocked == [
        "The ticket has no customer, so there is no code of theirs to reissue."
    ]


def test_a_seat_changed_since_the_preview_is_refused(ticket, seat, reissue, entitled_agent):
    token = preview_of(ticket, reissue, entitled_agent).token
    set_fields(seat, code="CHANGED-1")

    with pytest.raises(macros.MacroError) as refused:
        apply(ticket, reissue, entitled_agent, token)

    assert str(refused.value) == (
        f"This changed since you opened the preview: {CODE}: its code; review it again."
    )
    assert Entitlement.objects.count() == 1


# --- Who may ------------------------------------------------------------------------------


def test_account_managers_and_ops_leads_may_not_apply_macros(
    client, ticket, escalate, manager, ops_lead
):
    before = stored(ticket)
    for person in (manager, ops_lead):
        client.force_login(person)
        assert client.get(preview_url(ticket, escalate)).status_code == 403
        assert client.post(preview_url(ticket), {"macro": escalate.pk}).status_code == 403
        with pytest.raises(macros.MacroPermissionError):
            apply(ticket, escalate, person)
    assert stored(ticket) == before


def test_account_managers_read_macros_and_do_not_write_them(client, escalate, manager):
    client.force_login(manager)
    assert client.get(reverse("admin:support_macro_changelist")).status_code == 200
    assert client.get(reverse("admin:support_macro_add")).status_code == 403
    change = reverse("admin:support_macro_change", args=[escalate.pk])
    assert client.post(change, {"name": "Mine now"}).status_code == 403
    escalate.refresh_from_db()
    assert escalate.name == "Escalate"


def test_the_ticket_page_offers_the_active_macros_to_those_who_work_tickets(
    client, ticket, escalate, agent, manager
):
    with acting_as("test:fixture"):
        builders.macro(name="Retired", is_active=False)
    client.force_login(agent)
    html = client.get(page(ticket)).content.decode()
    assert f'<option value="{escalate.pk}">Escalate</option>' in html
    assert "Retired" not in html
    assert f'action="{preview_url(ticket)}"' in html
    client.force_login(manager)
    assert 'data-testid="macro-pick"' not in client.get(page(ticket)).content.decode()


@pytest.mark.parametrize("value", ["abc", "0", "99999999", "1" + "0" * 21])
def test_a_macro_that_is_no_macro_sends_back_to_the_ticket_with_a_message(
    client, ticket, agent, value
):
    client.force_login(agent)
    response = client.get(preview_url(ticket) + f"?macro={value}")
    assert response.status_code == 302
    assert response["Location"] == page(ticket) + "#composer"
    assert messages_of(response) == ["There is no such macro; choose one on the ticket."]
    posted = client.post(preview_url(ticket), {"macro": value})
    assert posted.status_code == 302
    assert messages_of(posted)[-1] == (
        "Nothing changed. There is no such macro; choose one on the ticket."
    )


def test_the_preview_shows_what_came_from_outside_as_text(client, customer, agent, seat):
    with acting_as("test:fixture"):
        customer.name = "Acme <script>alert(1)</script>"
        customer.save()
        hostile = make_ticket(
            "<img src=x onerror=alert(1)>",
            customer=customer,
            requester_name="<b>Pat</b>",
        )
        macro = builders.macro(
            name="<i>Hi</i>",
            reply="{requester_name} {customer} {ticket_subject} {new_code}",
            workflow=Macro.Workflow.REISSUE_CODE,
        )
    client.force_login(agent)
    html = client.get(preview_url(hostile, macro)).content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<b>Pat" not in html
    assert "&lt;b&gt;Pat&lt;/b&gt; Acme &lt;script&gt;alert(1)&lt;/script&gt; &lt;img" in html
    assert "Apply “&lt;i&gt;Hi&lt;/i&gt;”" in html
    assert '<mark data-testid="macro-new-code">new code</mark>' in html


# --- Queries ----------------------------------------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_the_preview_page_costs_the_same_whatever_the_ticket_and_the_macro_hold(
    client, customer, ticket, escalate, reissue, seat, entitled_agent, tags
):
    client.force_login(entitled_agent)
    with acting_as("test:fixture"):
        many = [Tag.objects.create(name=f"t{n}") for n in range(6)]
        busy = make_ticket("Busy", customer=customer)
        busy.tags.add(*many)
        big = builders.macro(name="Big", add_tags=many[:3], remove_tags=many[3:], assign="me")
        for n in range(5):
            builders.entitlement(customer=customer, state="assigned", assignee_email=f"u{n}@x.io")
    count_queries(client, preview_url(ticket, escalate))  # warm per-process caches

    # The session, the user and their two sets of permissions, the ticket (by its id,
    # then with its customer and assignee) and its tags, the macro with its assignee and
    # its two tag lists, and one more: whether the assignee may work tickets, or for the
    # workflow the requester's seats.
    assert count_queries(client, preview_url(ticket, escalate)) == 11
    assert count_queries(client, preview_url(busy, big)) == 11
    assert count_queries(client, preview_url(ticket, reissue)) == 11
