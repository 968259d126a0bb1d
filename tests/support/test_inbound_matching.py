"""Matching an inbound email to its ticket (docs/contracts/email.md, "Matching a message to
a ticket"), in the contract's order: the reply address's token, then In-Reply-To /
References, then "[#id]" from the ticket's requester, else a new ticket whose customer
is found by the sender's address or domain."""

from __future__ import annotations

import pytest

from support.email_thread import ticket_token
from support.models import InboundEmail, Tag, Ticket
from tests import builders
from tests.support.raw_emails import SUPPORT_FROM, plain_email, processed, raw_email, received

pytestmark = pytest.mark.django_db

ADDRESS = InboundEmail.MatchedBy.ADDRESS
THREAD = InboundEmail.MatchedBy.THREAD
SUBJECT = InboundEmail.MatchedBy.SUBJECT
NEW_TICKET = InboundEmail.MatchedBy.NEW_TICKET


@pytest.fixture(autouse=True)
def support_from(settings):
    settings.OPSDESK_SUPPORT_FROM = SUPPORT_FROM


def sent_reply(ticket: Ticket, author, n: int = 1):
    """A reply of ours on ``ticket`` that went out with a Message-ID."""
    return builders.reply(
        ticket=ticket, author=author, message_id=f"<reply-{ticket.pk}-{n}@acme.example>"
    )


def the_entry(ticket: Ticket) -> str:
    """The text of the ticket's one customer message."""
    (comment,) = ticket.comments.filter(kind="customer")
    return comment.body


# --- 1. the reply address -------------------------------------------------------------


def test_a_gmail_reply_to_the_tickets_address_joins_that_ticket(agent):
    ticket = builders.ticket(subject="CSV export times out", requester_email="pat@globex.com")
    reply = sent_reply(ticket, agent)

    inbound = processed(
        received(raw_email("gmail_reply", ticket=ticket, in_reply_to=reply.message_id))
    )

    assert (inbound.ticket, inbound.matched_by, inbound.warning) == (ticket, ADDRESS, "")
    assert inbound.kind == InboundEmail.Kind.MESSAGE
    assert the_entry(ticket) == "Thanks, that worked!"


def test_an_html_only_outlook_web_reply_to_the_tickets_address_joins_it_as_text(agent):
    ticket = builders.ticket(subject="Invoice shows the wrong VAT number")

    inbound = processed(
        received(
            raw_email(
                "outlook_web_html_only",
                ticket=ticket,
                in_reply_to=sent_reply(ticket, agent).message_id,
            )
        )
    )

    assert (inbound.ticket, inbound.matched_by) == (ticket, ADDRESS)
    assert the_entry(ticket) == "The VAT number is DE 123 456 789, not the old one. Grüße aus Köln!"


def test_a_thunderbird_reply_to_the_tickets_address_joins_it(agent):
    ticket = builders.ticket(subject="Seats not freed after offboarding")
    reply = sent_reply(ticket, agent)

    inbound = processed(
        received(raw_email("thunderbird_reply", ticket=ticket, in_reply_to=reply.message_id))
    )

    assert (inbound.ticket, inbound.matched_by) == (ticket, ADDRESS)
    assert the_entry(ticket).endswith("Could you free them by hand until it is fixed?\n\nLena")


def test_the_address_wins_over_a_thread_naming_another_ticket(agent):
    ticket = builders.ticket(requester_email="pat@globex.com")
    other = builders.ticket(requester_email="pat@globex.com")
    other_reply = sent_reply(other, agent)

    inbound = processed(
        received(raw_email("gmail_reply", ticket=ticket, in_reply_to=other_reply.message_id))
    )

    assert (inbound.ticket, inbound.matched_by) == (ticket, ADDRESS)
    assert other.comments.filter(kind="customer").count() == 0


def test_an_address_in_cc_or_delivered_to_routes_too():
    ticket = builders.ticket()
    address = f"support+t{ticket.pk}.{ticket_token(ticket.pk)}@acme.example"
    by_cc = plain_email("In Cc.", To="someone@globex.com", Cc=f"Support <{address}>")
    by_delivery = plain_email("Delivered.", Delivered_To=address)

    assert processed(received(by_cc)).ticket == ticket
    assert processed(received(by_delivery)).matched_by == ADDRESS
    assert [c.body for c in ticket.comments.all()] == ["In Cc.", "Delivered."]


def test_a_token_made_for_another_ticket_is_not_matched_by_address():
    ticket = builders.ticket(subject="Mine", requester_email="pat@globex.com")
    victim = builders.ticket(subject="Someone else's")
    # Ticket ``ticket``'s valid token, with the victim's id in front of it.
    forged = plain_email(
        "Let me in.",
        sender="mallory@evil.example",
        To=f"support+t{victim.pk}.{ticket_token(ticket.pk)}@acme.example",
    )

    inbound = processed(received(forged))

    assert inbound.matched_by == NEW_TICKET
    assert inbound.ticket not in (ticket, victim)
    assert victim.comments.count() == 0
    assert inbound.warning.startswith(
        f"A recipient names #{victim.pk} with a token that does not verify: ignored."
    )


def test_a_valid_address_of_a_ticket_that_is_gone_matches_nothing():
    ticket = builders.ticket()
    gone = ticket.pk
    ticket.delete()

    inbound = processed(
        received(plain_email("Hello?", To=f"support+t{gone}.{ticket_token(gone)}@acme.example"))
    )

    assert inbound.matched_by == NEW_TICKET
    assert f"Its reply address routes to #{gone}, which no longer exists." in inbound.warning


# --- 2. In-Reply-To / References --------------------------------------------------------


def test_an_outlook_reply_without_the_token_is_matched_by_in_reply_to(agent):
    ticket = builders.ticket(subject="CSV export times out", requester_email="jane@initech.com")
    first, second = sent_reply(ticket, agent, 1), sent_reply(ticket, agent, 2)
    raw = raw_email(
        "outlook_desktop_reply",
        ticket=ticket,
        in_reply_to=second.message_id,
        references=f"{first.message_id} {second.message_id}",
    )

    inbound = processed(received(raw))

    assert (inbound.ticket, inbound.matched_by) == (ticket, THREAD)
    assert the_entry(ticket).startswith("Hi Sam,\n\nThe export ran through this morning")


def test_references_alone_are_read_from_the_latest(agent):
    older = builders.ticket()
    latest = builders.ticket()
    references = f"<unknown@elsewhere.example> {sent_reply(older, agent).message_id} "
    references += f"{sent_reply(latest, agent).message_id} <not-ours@globex.com>"

    inbound = processed(received(plain_email("Following up.", References=references)))

    assert (inbound.ticket, inbound.matched_by) == (latest, THREAD)


def test_in_reply_to_is_read_before_references(agent):
    answered = builders.ticket()
    referenced = builders.ticket()
    message = plain_email(
        "Answer.",
        In_Reply_To=sent_reply(answered, agent).message_id,
        References=sent_reply(referenced, agent).message_id,
    )

    assert processed(received(message)).ticket == answered


def test_a_message_answering_a_customers_earlier_message_joins_its_ticket():
    ticket = builders.ticket(requester_email="pat@globex.com")
    earlier = builders.customer_message(ticket=ticket, body="First.")

    inbound = processed(received(plain_email("And another thing.", In_Reply_To=earlier.message_id)))

    assert (inbound.ticket, inbound.matched_by) == (ticket, THREAD)


def test_a_message_answering_an_earlier_auto_reply_joins_its_ticket():
    ticket = builders.ticket()
    auto_reply = builders.inbound_email(
        ticket=ticket, kind=InboundEmail.Kind.AUTO_REPLY, message_id="<ooo-1@globex.com>"
    )

    inbound = processed(received(plain_email("Back now.", In_Reply_To=auto_reply.message_id)))

    assert (inbound.ticket, inbound.matched_by) == (ticket, THREAD)


# --- 3. [#id] in the subject --------------------------------------------------------------


def test_an_iphone_reply_with_only_the_subjects_id_joins_the_requesters_ticket():
    ticket = builders.ticket(subject="Seats not freed", requester_email="Robin@Fjord.no")

    inbound = processed(received(raw_email("apple_mail_reply", ticket=ticket)))

    assert (inbound.ticket, inbound.matched_by, inbound.warning) == (ticket, SUBJECT, "")
    assert the_entry(ticket) == (
        "Yes, it\u2019s the three people who left in February.\nThey still show as active."
    )


def test_a_strangers_subject_naming_a_ticket_opens_a_new_one():
    ticket = builders.ticket(subject="Seats not freed", requester_email="someone@fjord.no")

    inbound = processed(received(raw_email("apple_mail_reply", ticket=ticket)))

    assert inbound.matched_by == NEW_TICKET
    assert inbound.ticket != ticket
    assert inbound.ticket.subject == "Seats not freed after offboarding"
    assert ticket.comments.count() == 0
    assert inbound.warning.startswith(
        f"The subject names #{ticket.pk}, but robin@fjord.no is not its requester: "
        "not matched by subject."
    )


# --- 4. a new ticket ----------------------------------------------------------------------


def test_a_new_request_opens_a_ticket_tagged_email_for_the_contacts_customer():
    globex = builders.customer(name="Globex")
    builders.contact(customer=globex, email="Morgan.Lee@globex.com")

    inbound = processed(received(raw_email("new_request", sender="morgan.lee@GLOBEX.com")))

    ticket = inbound.ticket
    assert (inbound.matched_by, inbound.warning) == (NEW_TICKET, "")
    assert ticket.subject == "Export fails for large workspaces"
    assert (ticket.requester_email, ticket.requester_name) == (
        "morgan.lee@GLOBEX.com",
        "Lee, Morgan",
    )
    assert ticket.customer == globex
    assert ticket.tenant_id == globex.external_id
    assert list(ticket.tags.values_list("name", flat=True)) == ["email"]
    assert ticket.status == Ticket.Status.OPEN
    assert ticket.first_response_due_at is not None
    assert ticket.message.startswith("Hello,\n\nSince Monday the CSV export stops")
    assert the_entry(ticket) == ticket.message


def test_the_customer_is_found_by_the_domain_of_one_customers_contacts():
    initech = builders.customer(name="Initech")
    builders.contact(customer=initech, email="bill@initech.com")
    builders.contact(customer=initech, email="peter@Initech.com")
    builders.contact(email="someone@notinitech.com")

    inbound = processed(received(plain_email("Hi.", sender="milton@initech.com")))

    assert inbound.ticket.customer == initech
    assert inbound.warning == ""


def test_a_domain_shared_by_two_customers_names_none():
    builders.contact(email="a@umbrella.io")
    builders.contact(email="b@umbrella.io")

    inbound = processed(received(plain_email("Hi.", sender="c@umbrella.io")))

    assert inbound.ticket.customer is None
    assert inbound.warning == (
        "No customer set: contacts of several customers have addresses at umbrella.io."
    )


def test_a_free_mail_domain_names_no_customer_but_a_contacts_own_address_does():
    builders.contact(email="first@gmail.com")
    known = builders.contact(email="Kim.Lee@gmail.com")

    stranger = processed(received(plain_email("Hi.", sender="someone.else@gmail.com")))
    contact = processed(received(plain_email("Hi.", sender="kim.lee@gmail.com")))

    assert stranger.ticket.customer is None
    assert stranger.warning == (
        "No customer set: gmail.com is a free-mail domain, and no contact has this address."
    )
    assert contact.ticket.customer == known.customer


def test_an_address_nobody_knows_opens_a_ticket_without_a_customer():
    inbound = processed(received(plain_email("Hi.", sender="x@unknown.example")))

    assert inbound.ticket.customer is None
    assert inbound.warning == "No customer set: no contact has an address at unknown.example."


@pytest.mark.parametrize(
    ("subject", "ticket_subject"),
    [
        ("Re: AW: Fwd: Export fails [#999999]", "Export fails"),
        ("RE: FW: SV: Antw: TR: Login", "Login"),
        ("Re[2]: WG: Rechnung", "Rechnung"),
        ("Regarding the renewal", "Regarding the renewal"),
        ("Re:", "(no subject)"),
        ("", "(no subject)"),
    ],
)
def test_a_new_tickets_subject_loses_reply_prefixes_and_ids(subject, ticket_subject):
    inbound = processed(received(plain_email("Hi.", sender="x@unknown.example", subject=subject)))

    assert inbound.ticket.subject == ticket_subject


def test_the_email_tag_is_made_once():
    processed(received(plain_email("One.", sender="x@unknown.example")))
    processed(received(plain_email("Two.", sender="y@unknown.example")))

    assert Tag.objects.filter(name="email").count() == 1
    assert Ticket.objects.filter(tags__name="email").count() == 2
