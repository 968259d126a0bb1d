"""What staff do to a ticket: assign, prioritise, tag, resolve, write notes and replies.

Each function locks the ticket row, changes only its own fields (so two people working
one ticket don't overwrite each other's changes) and says what it did in one sentence,
which the queue shows as its message.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from support.enqueue import publish_after_commit
from support.models import Tag, Ticket, TicketComment


class TicketActionError(Exception):
    """A request staff can correct (the message says how); nothing was changed."""


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _label(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()


@transaction.atomic
def ticket_assign(*, ticket: Ticket, assignee: AbstractBaseUser) -> str:
    ticket = _locked(ticket)
    if ticket.assignee_id == assignee.pk:
        return f"“{ticket}” was already assigned to {_label(assignee)}."
    previous = ticket.assignee
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    taken = f" (taken over from {_label(previous)})" if previous else ""
    return f"“{ticket}” is now assigned to {_label(assignee)}{taken}."


@transaction.atomic
def ticket_set_priority(*, ticket: Ticket, priority: str) -> str:
    """Set the priority; an unanswered ticket's first-response deadline follows it."""
    from support.services import first_response_due

    if priority not in Ticket.Priority.values:
        raise TicketActionError(f"“{priority}” is not a priority.")
    ticket = _locked(ticket)
    if ticket.priority == priority:
        return f"“{ticket}” already has priority {ticket.get_priority_display().lower()}."
    ticket.priority = priority
    fields = ["priority", "updated_at"]
    if ticket.first_responded_at is None:
        ticket.first_response_due_at = first_response_due(
            priority=priority, opened_at=ticket.created_at
        )
        fields.append("first_response_due_at")
    ticket.save(update_fields=fields)
    return f"“{ticket}” now has priority {ticket.get_priority_display().lower()}."


@transaction.atomic
def ticket_add_tag(*, ticket: Ticket, tag: Tag) -> str:
    ticket = _locked(ticket)
    if ticket.tags.filter(pk=tag.pk).exists():
        return f"“{ticket}” was already tagged {tag}."
    ticket.tags.add(tag)
    return f"“{ticket}” is tagged {tag}."


@transaction.atomic
def ticket_resolve(*, ticket: Ticket) -> str:
    ticket = _locked(ticket)
    if ticket.status not in Ticket.OPEN_STATES:
        raise TicketActionError(f"“{ticket}” is already {ticket.get_status_display().lower()}.")
    ticket.status = Ticket.Status.SOLVED
    ticket.save(update_fields=["status", "updated_at"])
    return f"“{ticket}” is solved."


@transaction.atomic
def ticket_comment(*, ticket: Ticket, author: AbstractBaseUser, kind: str, body: str) -> str:
    """Record a note or a reply. A reply is emailed to the requester once the transaction
    commits, and the first one stops the first-response clock."""
    body = body.strip()
    if not body:
        raise TicketActionError("Write something first: the note or reply is empty.")
    ticket = _locked(ticket)
    if kind == TicketComment.Kind.NOTE:
        TicketComment.objects.create(ticket=ticket, kind=kind, body=body, author=author)
        return "Internal note added."
    if kind != TicketComment.Kind.REPLY:
        raise TicketActionError(f"“{kind}” is neither a note nor a reply.")
    if not ticket.requester_email:
        raise TicketActionError(
            "This ticket has no requester email, so a reply can't reach anyone; "
            "add an internal note instead."
        )
    comment = TicketComment.objects.create(
        ticket=ticket, kind=kind, body=body, author=author, sent_to=ticket.requester_email
    )
    if ticket.first_responded_at is None:
        ticket.first_responded_at = comment.created_at
        ticket.save(update_fields=["first_responded_at", "updated_at"])
    publish_after_commit("support.send_ticket_reply", comment.pk)
    return f"Reply recorded; it is being sent to {ticket.requester_email}."


def replies_unsent(*, older_than: dt.timedelta = dt.timedelta(minutes=2)) -> list[int]:
    """Replies whose sending was never queued or gave up (the sweep sends them)."""
    return list(
        TicketComment.objects.filter(
            kind=TicketComment.Kind.REPLY,
            sent_at__isnull=True,
            created_at__lte=timezone.now() - older_than,
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:200]
    )


def reply_send(*, comment_id: int) -> bool:
    """Email one reply; True when sent now, False when it had been sent already.
    Mail server errors propagate so the task retries."""
    from django.conf import settings
    from django.core.mail import EmailMessage

    with transaction.atomic():
        comment = (
            TicketComment.objects.select_for_update()
            .select_related("ticket", "author")
            .get(pk=comment_id)
        )
        if comment.sent_at is not None:
            return False
        ticket = comment.ticket
        EmailMessage(
            subject=f"Re: {ticket.subject} [#{ticket.pk}]",
            body=comment.body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[comment.sent_to],
            headers={"X-Opsdesk-Ticket": str(ticket.pk)},
        ).send()
        comment.sent_at = timezone.now()
        comment.save(update_fields=["sent_at"])
    return True
