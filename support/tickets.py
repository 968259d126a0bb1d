"""What staff do to a ticket: open one by hand, assign, prioritise, tag, set its status,
write notes and replies.

Each function checks that ``by`` (the person asking) may do it, inside the service, so
no page, form or crafted POST gets past it: ``by=None`` is the system (webhook
processing, triage, Celery tasks, commands), and is refused while a person's request is
being served (audit.context names who acts), so a view that forgot to name its user is
refused, not let through. A refusal raises ``TicketPermissionError`` (a
``PermissionDenied``: a 403) and changes nothing.

Each function locks the ticket row, changes only its own fields (so two people working
one ticket don't overwrite each other's changes) and says what it did in one sentence,
which the queue shows as its message.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from audit.context import require_permission
from customers.models import Customer
from kit.publish import publish_after_commit
from kit.text import one_line
from support import email_thread, notices
from support.models import Tag, Ticket, TicketComment
from support.ticket_sla import ticket_sla_apply
from support.triage import triage_apply

ADD = "support.add_ticket"
CHANGE = "support.change_ticket"


class TicketActionError(Exception):
    """A request staff can correct (the message says how); nothing was changed."""


class TicketPermissionError(PermissionDenied):
    """``by`` may not do this to tickets; nothing was changed (a 403 in a view)."""


def _may(by: AbstractBaseUser | None, permission: str) -> None:
    require_permission(by, permission, TicketPermissionError)


def _locked(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _label(user: AbstractBaseUser) -> str:
    return user.get_full_name() or user.get_username()


def ticket_assignees() -> models.QuerySet:
    """Who may be given a ticket: active staff who may work tickets."""
    perm = Permission.objects.filter(codename="change_ticket", content_type__app_label="support")
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(
            Q(is_superuser=True) | Q(user_permissions__in=perm) | Q(groups__permissions__in=perm)
        )
        .distinct()
        .order_by("first_name", "username")
    )


@transaction.atomic
def ticket_create(
    *,
    subject: str,
    by: AbstractBaseUser | None,
    message: str = "",
    requester_email: str = "",
    requester_name: str = "",
    customer: Customer | None = None,
    category: str = Ticket.Category.OTHER,
    priority: str = Ticket.Priority.NORMAL,
) -> Ticket:
    """Open a ticket by hand (a phone call, an email to someone's inbox): like one from
    the product, it gets its service levels (``support.ticket_sla``: its customer's
    policy, its priority's targets) and is triaged (the rules may set its priority,
    queue, assignee and tags)."""
    _may(by, ADD)
    subject = one_line(subject or "")
    if not subject:
        raise TicketActionError("Give the ticket a subject.")
    if priority not in Ticket.Priority.values:
        raise TicketActionError(f"“{priority}” is not a priority.")
    if category not in Ticket.Category.values:
        raise TicketActionError(f"“{category}” is not a category.")
    opened_at = timezone.now()
    ticket = Ticket(
        subject=subject[:200],
        message=message or "",
        requester_email=requester_email or "",
        requester_name=requester_name or "",
        customer=customer,
        tenant_id=customer.external_id if customer else "",
        category=category,
        priority=priority,
        created_at=opened_at,
    )
    ticket_sla_apply(ticket=ticket, now=opened_at)
    ticket.save()
    triage_apply(ticket=ticket)
    return ticket


@transaction.atomic
def ticket_assign(
    *, ticket: Ticket, assignee: AbstractBaseUser, by: AbstractBaseUser | None
) -> str:
    _may(by, CHANGE)
    if not ticket_assignees().filter(pk=assignee.pk).exists():
        raise TicketActionError(f"{_label(assignee)} may not work tickets; pick someone who may.")
    ticket = _locked(ticket)
    if ticket.assignee_id == assignee.pk:
        return f"“{ticket}” was already assigned to {_label(assignee)}."
    previous = ticket.assignee
    ticket.assignee = assignee
    ticket.save(update_fields=["assignee", "updated_at"])
    notices.ticket_assigned_notify(ticket=ticket, assignee=assignee, by=by)
    taken = f" (taken over from {_label(previous)})" if previous else ""
    return f"“{ticket}” is now assigned to {_label(assignee)}{taken}."


@transaction.atomic
def ticket_unassign(*, ticket: Ticket, by: AbstractBaseUser | None) -> str:
    _may(by, CHANGE)
    ticket = _locked(ticket)
    if ticket.assignee_id is None:
        return f"“{ticket}” was not assigned to anyone."
    previous = ticket.assignee
    ticket.assignee = None
    ticket.save(update_fields=["assignee", "updated_at"])
    return f"“{ticket}” is no longer assigned to {_label(previous)}."


@transaction.atomic
def ticket_set_priority(*, ticket: Ticket, priority: str, by: AbstractBaseUser | None) -> str:
    """Set the priority; the deadlines of the clocks still running follow it (an
    unanswered ticket's first response, still counted from the opening)."""
    _may(by, CHANGE)
    if priority not in Ticket.Priority.values:
        raise TicketActionError(f"“{priority}” is not a priority.")
    ticket = _locked(ticket)
    if ticket.priority == priority:
        return f"“{ticket}” already has priority {ticket.get_priority_display().lower()}."
    ticket.priority = priority
    fields = ["priority", *ticket_sla_apply(ticket=ticket), "updated_at"]
    ticket.save(update_fields=fields)
    return f"“{ticket}” now has priority {ticket.get_priority_display().lower()}."


@transaction.atomic
def ticket_add_tag(*, ticket: Ticket, tag: Tag, by: AbstractBaseUser | None) -> str:
    _may(by, CHANGE)
    ticket = _locked(ticket)
    if ticket.tags.filter(pk=tag.pk).exists():
        return f"“{ticket}” was already tagged {tag}."
    ticket.tags.add(tag)
    return f"“{ticket}” is tagged {tag}."


@transaction.atomic
def ticket_remove_tag(*, ticket: Ticket, tag: Tag, by: AbstractBaseUser | None) -> str:
    _may(by, CHANGE)
    ticket = _locked(ticket)
    if not ticket.tags.filter(pk=tag.pk).exists():
        return f"“{ticket}” was not tagged {tag}."
    ticket.tags.remove(tag)
    return f"“{ticket}” is no longer tagged {tag}."


@transaction.atomic
def ticket_resolve(*, ticket: Ticket, by: AbstractBaseUser | None) -> str:
    _may(by, CHANGE)
    ticket = _locked(ticket)
    if ticket.status not in Ticket.OPEN_STATES:
        raise TicketActionError(f"“{ticket}” is already {ticket.get_status_display().lower()}.")
    ticket.status = Ticket.Status.SOLVED
    ticket.save(update_fields=["status", *ticket_sla_apply(ticket=ticket), "updated_at"])
    return f"“{ticket}” is solved."


@transaction.atomic
def ticket_set_status(
    *, ticket: Ticket, status: str, by: AbstractBaseUser | None, permission: str = CHANGE
) -> str:
    """Any status to any other: waiting on the customer (its clocks pause), solved,
    closed (they stop), or open again (they go on).

    An error-spike ticket is reopened only while no other open ticket tracks the same
    error (later spikes add to that one). ``permission``: what ``by`` needs, the ticket's
    own, or ``support.change_problem`` when a problem's solve solves its tickets."""
    _may(by, permission)
    if status not in Ticket.Status.values:
        raise TicketActionError(f"“{status}” is not a status.")
    ticket = _locked(ticket)
    if ticket.status == status:
        return f"“{ticket}” is already {ticket.get_status_display().lower()}."
    ticket.status = status
    fields = ["status", *ticket_sla_apply(ticket=ticket), "updated_at"]
    try:
        with transaction.atomic():
            ticket.save(update_fields=fields)
    except IntegrityError:
        raise TicketActionError(
            f"“{ticket}” can't be reopened: another open ticket tracks the same error."
        ) from None
    return f"“{ticket}” is now {ticket.get_status_display().lower()}."


@transaction.atomic
def ticket_comment(
    *, ticket: Ticket, author: AbstractBaseUser, kind: str, body: str, permission: str = CHANGE
) -> str:
    """Record a note or a reply. A reply is emailed to the requester once the transaction
    commits; the first one stops the first-response clock, and every one the
    next-response clock. ``author`` is who acts; ``permission`` what they need, the
    ticket's own, or ``support.change_problem`` for a problem's update to its tickets."""
    _may(author, permission)
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
    # The reply answers the customer: the first one stops the first-response clock, and
    # each stops the next-response clock their latest message started.
    answered = []
    if ticket.first_responded_at is None:
        ticket.first_responded_at = comment.created_at
        answered.append("first_responded_at")
    answered += ticket_sla_apply(ticket=ticket, now=comment.created_at)
    if answered:
        ticket.save(update_fields=[*answered, "updated_at"])
    publish_after_commit("support.reply_send", comment.pk)
    return f"Reply recorded; it is being sent to {ticket.requester_email}."


# What the ticket page's form changes (``ticket_update``'s ``changes``), in the order
# they are applied.
TICKET_UPDATE_FIELDS = ("status", "priority", "assignee", "tags", "category", "queue", "customer")


@transaction.atomic
def ticket_update(
    *,
    ticket: Ticket,
    by: AbstractBaseUser | None,
    changes: Mapping[str, Any] | None = None,
    comment_kind: str | None = None,
    body: str = "",
    then_status: str | None = None,
) -> list[str]:
    """One submit of the ticket page, all or nothing: the fields the person changed
    (``changes``: field name -> new value, names from ``TICKET_UPDATE_FIELDS``), then a
    note or a reply (``comment_kind``, ``body``), then a status (``then_status``: "Send
    and mark waiting", "Send and solve"). Returns what was done, a sentence each.

    A field not named keeps its current value, also when someone changed it since the
    page loaded. Each part is the service that does it alone (``ticket_set_priority``
    moves the deadline, ``ticket_assign`` takes only who may work tickets,
    ``ticket_comment`` sends a reply to the requester, ...), so the rules are the queue's;
    ``tags`` is the whole set the ticket should have. A refusal of any part raises
    ``TicketActionError`` and nothing at all is changed."""
    _may(by, CHANGE)
    changes = dict(changes or {})
    unknown = sorted(set(changes) - set(TICKET_UPDATE_FIELDS))
    if unknown:
        raise TicketActionError(f"{', '.join(unknown)} can't be changed here.")
    if comment_kind not in (None, TicketComment.Kind.NOTE, TicketComment.Kind.REPLY):
        raise TicketActionError(f"“{comment_kind}” is neither a note nor a reply.")
    if then_status is not None and then_status not in Ticket.Status.values:
        raise TicketActionError(f"“{then_status}” is not a status.")
    ticket = _locked(ticket)
    done = []
    plain = []
    for name in TICKET_UPDATE_FIELDS:
        if name not in changes:
            continue
        value = changes[name]
        if name == "status":
            done.append(ticket_set_status(ticket=ticket, status=value, by=by))
        elif name == "priority":
            done.append(ticket_set_priority(ticket=ticket, priority=value, by=by))
        elif name == "assignee":
            done.append(
                ticket_assign(ticket=ticket, assignee=value, by=by)
                if value is not None
                else ticket_unassign(ticket=ticket, by=by)
            )
        elif name == "tags":
            done += _tags_set(ticket=ticket, tags=set(value or ()), by=by)
        elif name == "category":
            if value not in Ticket.Category.values:
                raise TicketActionError(f"“{value}” is not a category.")
            plain.append(name)
        elif name == "queue":
            value = one_line(value or "")[:50]
            plain.append(name)
        else:  # customer
            if value is not None and not isinstance(value, Customer):
                raise TicketActionError("Pick the customer from the list.")
            plain.append(name)
        changes[name] = value
    if plain:
        fresh = _locked(ticket)  # as the services above left it
        for name in plain:
            setattr(fresh, name, changes[name])
        # Another customer may have another contract, so another service level.
        sla = ticket_sla_apply(ticket=fresh) if "customer" in plain else []
        fresh.save(update_fields=[*plain, *sla, "updated_at"])
        said = [f"{_field_label(name)} {_shown(fresh, name)}" for name in plain]
        done.append(f"“{fresh}” now has {_listed(said)}.")
    if comment_kind is not None:
        done.append(ticket_comment(ticket=ticket, author=by, kind=comment_kind, body=body))
    if then_status is not None:
        done.append(ticket_set_status(ticket=ticket, status=then_status, by=by))
    return done


def _tags_set(*, ticket: Ticket, tags: set[Tag], by: AbstractBaseUser | None) -> list[str]:
    current = set(ticket.tags.all())
    return [
        *(ticket_add_tag(ticket=ticket, tag=tag, by=by) for tag in sorted(tags - current, key=str)),
        *(
            ticket_remove_tag(ticket=ticket, tag=tag, by=by)
            for tag in sorted(current - tags, key=str)
        ),
    ]


def _field_label(name: str) -> str:
    return str(Ticket._meta.get_field(name).verbose_name)


def _shown(ticket: Ticket, name: str) -> str:
    if name == "category":
        return ticket.get_category_display().lower()
    value = getattr(ticket, name)
    return f"“{value}”" if value else "none"


def _listed(words: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


logger = logging.getLogger(__name__)

# Sending replies. A reply is pending until the mail server takes it (sent) or sending is
# given up (parked: ``failed_at``), which happens at once for a failure that cannot pass
# and after ``REPLY_MAX_ATTEMPTS`` for one that may (the task's backoff spaces them).
REPLY_MAX_ATTEMPTS = 9
# A reply nobody has tried this long after it was written had its queueing lost.
REPLY_QUEUE_GRACE = dt.timedelta(minutes=2)
# Longer than any backoff wait of the task (30 min) and the broker's visibility timeout
# (1 h): a pending reply last tried this long ago had its retries lost with a worker.
REPLY_RETRIES_LOST_AFTER = dt.timedelta(minutes=75)


class ReplySendDeferred(Exception):
    """Sending a reply failed for a reason that may pass (the mail server is down, slow or
    answered 4xx); the reply stays pending with its error and the task tries it again."""


def _permanent(error: Exception) -> bool:
    """Whether sending the same message again can never succeed: a header or address it
    cannot carry (``BadHeaderError`` and Django's address checks are ValueErrors), or the
    server's 5xx refusal of the recipient or of the message. Everything else (refused or
    timed-out connections, disconnects, 4xx) may pass."""
    if isinstance(error, ValueError):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False


def _reply_message(comment: TicketComment):
    """The email of a reply, with the threading headers of docs/contracts/email.md."""
    from django.conf import settings
    from django.core.mail import EmailMessage

    ticket = comment.ticket
    subject = " ".join(filter(None, ["Re:", one_line(ticket.subject), f"[#{ticket.pk}]"]))
    earlier = list(
        ticket.comments.exclude(message_id="")
        .filter(
            Q(created_at__lt=comment.created_at)
            | Q(created_at=comment.created_at, pk__lt=comment.pk)
        )
        .order_by("created_at", "pk")
        .values_list("message_id", flat=True)
    )
    return EmailMessage(
        subject=subject,
        body=comment.body,
        from_email=settings.OPSDESK_SUPPORT_FROM,
        to=[comment.sent_to],
        reply_to=[email_thread.ticket_reply_address(ticket.pk)],
        headers={
            "Message-ID": comment.message_id,
            **email_thread.thread_headers(earlier),
            "X-Opsdesk-Ticket": str(ticket.pk),
        },
    )


def replies_unsent(*, older_than: dt.timedelta = REPLY_QUEUE_GRACE, limit: int = 200) -> list[int]:
    """Pending replies nobody is trying, oldest first (the sweep queues them again): not
    tried since they were written ``older_than`` ago or since a person's Retry (their
    queueing was lost), or last tried longer ago than any retry waits (their retries were
    lost with a worker). A parked reply is not among them: only a person's Retry sends
    it again."""
    now = timezone.now()
    return list(
        TicketComment.objects.filter(
            kind=TicketComment.Kind.REPLY,
            sent_at__isnull=True,
            failed_at__isnull=True,
            created_at__lte=now - older_than,
        )
        .filter(Q(delivery_attempts=0) | Q(last_attempt_at__lte=now - REPLY_RETRIES_LOST_AFTER))
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )


def reply_send(*, comment_id: int) -> bool:
    """Try to email one pending reply; True when it was sent now.

    Idempotent: the reply is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` only while
    it is pending, and marked sent in the same transaction, so a reply is sent once
    however many tasks and sweeps run (False: sent, parked, or being sent by another).
    Each attempt is recorded on the reply (attempts, time, error). A failure that can
    never pass parks the reply at once; one that may pass raises ``ReplySendDeferred``
    (for the task's retry) until the ``REPLY_MAX_ATTEMPTS``-th attempt, which parks it.
    """
    failure = None
    with transaction.atomic():
        comment = (
            TicketComment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("ticket")
            .filter(
                pk=comment_id,
                kind=TicketComment.Kind.REPLY,
                sent_at__isnull=True,
                failed_at__isnull=True,
            )
            .first()
        )
        if comment is None:
            return False
        now = timezone.now()
        comment.delivery_attempts += 1
        comment.last_attempt_at = now
        if not comment.message_id:  # the same Message-ID on every attempt
            comment.message_id = email_thread.message_id_new()
        try:
            _reply_message(comment).send()
        except Exception as error:  # every failure is recorded on the reply, never lost
            failure = error
            comment.delivery_error = f"{type(error).__name__}: {error}"[:2000]
            if _permanent(error) or comment.delivery_attempts >= REPLY_MAX_ATTEMPTS:
                comment.failed_at = now
                logger.error("reply %s parked: %s", comment.pk, comment.delivery_error)
            else:
                logger.warning("reply %s not sent yet: %s", comment.pk, comment.delivery_error)
        else:
            comment.sent_at = timezone.now()
            comment.delivery_error = ""
        comment.save(
            update_fields=[
                "sent_at",
                "failed_at",
                "delivery_error",
                "delivery_attempts",
                "last_attempt_at",
                "message_id",
            ]
        )
    if failure is not None and comment.failed_at is None:
        raise ReplySendDeferred(comment.delivery_error) from failure
    return failure is None


@transaction.atomic
def reply_retry(*, comment: TicketComment, actor: AbstractBaseUser) -> str:
    """Send a parked reply again (the Retry button): it is pending once more, with a fresh
    set of attempts, and queued once this commits (the sweep takes it if the broker is
    down). Only those who work tickets may; a reply that was sent, or is still being
    tried, is left as it is (a reply is never sent twice)."""
    _may(actor, CHANGE)
    comment = (
        TicketComment.objects.select_for_update(of=("self",))
        .select_related("ticket")
        .get(pk=comment.pk)
    )
    if comment.kind != TicketComment.Kind.REPLY:
        raise TicketActionError("Only a reply is emailed; an internal note is not sent.")
    if comment.sent_at is not None:
        raise TicketActionError(
            f"This reply was sent {timezone.localtime(comment.sent_at):%d %b %Y %H:%M}; "
            "it is not sent twice."
        )
    if comment.failed_at is None:
        raise TicketActionError("This reply is still being sent; it is retried by itself.")
    comment.failed_at = None
    comment.delivery_attempts = 0
    comment.delivery_error = ""
    comment._change_reason = "retry requested"
    comment.save(update_fields=["failed_at", "delivery_attempts", "delivery_error"])
    publish_after_commit("support.reply_send", comment.pk)
    return f"The reply is queued again; it is being sent to {comment.sent_to}."
