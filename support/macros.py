"""Applying a macro to a ticket (docs/product.md#macros): what it would do, shown first,
and then exactly that, in one transaction.

``macro_preview`` says what applying ``macro`` to ``ticket`` would do, changing nothing:
the reply as it would be sent (placeholders filled from the ticket, its customer and the
person applying it), each field's change from its current value, the workflow's step,
and why it cannot be applied, if it cannot. Its ``token`` is what the confirmation form
carries (``audit.previews``).

``macro_apply`` re-reads the ticket and the macro locked, builds the preview again and
refuses when anything shown changed since the page was opened (another person's change,
a double click). Then it runs the workflow through the entitlement service (which checks
its own permission) and the ticket's changes through ``support.tickets.ticket_update``
(the rules of the queue and the ticket page: who may be assigned, the service levels, the
reply emailed after commit), all or nothing. The ticket's history gets one entry, whose
reason names the macro (``audit.held.history_as_one``); the reply's and the
entitlements' rows give the same reason (the entitlements' also name the ticket).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from audit.context import acting_as, acting_for, current_actor, require_permission
from audit.held import history_as_one
from audit.previews import PreviewState, preview_changes, preview_token, stale_message
from customers.entitlements import CHANGE as ENTITLEMENT_CHANGE
from customers.entitlements import (
    LIVE,
    SHOWN,
    EntitlementError,
    entitlement_replace,
)
from customers.models import Entitlement
from kit.placeholders import PlaceholderError, placeholders_fill
from kit.text import one_line
from support import tickets
from support.models import Macro, Ticket, TicketComment

# Applying a macro is working the ticket.
APPLY = tickets.CHANGE
# Where the preview's reply shows the code the workflow has not drawn yet.
NEW_CODE_SLOT = "\x00new_code\x00"


class MacroError(Exception):
    """A macro that cannot be applied now; the message says why. Nothing was changed."""


class MacroPermissionError(tickets.TicketPermissionError):
    """``by`` may not apply macros (work tickets); nothing was changed."""


@dataclass(frozen=True)
class FieldChange:
    """One field as the macro leaves it: "Status", "Open" → "Solved"."""

    name: str
    label: str
    old: str
    new: str

    @property
    def changes(self) -> bool:
        return self.old != self.new


@dataclass
class MacroPreview:
    ticket: Ticket
    macro: Macro
    by: AbstractBaseUser
    # The reply as sent (stripped, as ticket_comment keeps it), the new code as
    # NEW_CODE_SLOT; "" when the macro has none.
    reply: str
    changes: list[FieldChange]
    # What the workflow does, a sentence each; none without one.
    steps: list[str]
    # The entitlement the workflow revokes and reissues, when exactly one fits.
    entitlement: Entitlement | None
    # Why it cannot be applied to this ticket now; empty: it can.
    blocked: list[str]
    # Why this person may not apply it (a permission the workflow's service checks).
    refused: list[str]
    state: PreviewState = field(repr=False)
    # What apply hands to ticket_update.
    update: dict = field(default_factory=dict, repr=False)
    then_status: str | None = None

    @property
    def token(self) -> str:
        return preview_token(self.state)

    @property
    def reply_parts(self) -> list[tuple[str, bool]]:
        """The reply in pieces, each (text, is the new code): the page marks the code."""
        parts: list[tuple[str, bool]] = []
        for n, text in enumerate(self.reply.split(NEW_CODE_SLOT)):
            if n:
                parts.append(("", True))
            if text:
                parts.append((text, False))
        return parts

    @property
    def can_apply(self) -> bool:
        return not self.blocked and not self.refused


def person_name(user: AbstractBaseUser | None) -> str:
    """A person as pages name them: their full name, else their username; "nobody"."""
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


def macro_summary(macro: Macro) -> str:
    """What a macro does, in a line: "reply; status → Solved; tags +vip -billing; ..."
    (its tags prefetched)."""
    parts = ["reply"] if macro.reply.strip() else []
    if macro.set_status:
        parts.append(f"status → {macro.get_set_status_display()}")
    if macro.set_priority:
        parts.append(f"priority → {macro.get_set_priority_display()}")
    tags = [f"+{tag.name}" for tag in macro.add_tags.all()]
    tags += [f"-{tag.name}" for tag in macro.remove_tags.all()]
    if tags:
        parts.append("tags " + " ".join(tags))
    if macro.set_queue:
        parts.append(f"queue → {macro.set_queue}")
    if macro.assign:
        who = {
            Macro.Assign.ME: "whoever applies it",
            Macro.Assign.PERSON: person_name(macro.assignee),
            Macro.Assign.NOBODY: "nobody",
        }[macro.assign]
        parts.append(f"assign → {who}")
    if macro.workflow:
        parts.append(macro.get_workflow_display().lower())
    return "; ".join(parts) or "nothing"


def macros_offered():
    """The macros a ticket page offers: the active ones, by name."""
    return Macro.objects.filter(is_active=True).order_by("name")


def _macro_read(pk, *, lock: bool = False) -> Macro | None:
    macros = Macro.objects.select_related("assignee").prefetch_related("add_tags", "remove_tags")
    if lock:
        macros = macros.select_for_update(of=("self",))
    return macros.filter(pk=pk).first()


def _ticket_read(pk, *, lock: bool = False) -> Ticket | None:
    tickets_ = Ticket.objects.select_related("customer", "assignee").prefetch_related("tags")
    if lock:
        tickets_ = tickets_.select_for_update(of=("self",))
    return tickets_.filter(pk=pk).first()


def _candidates(ticket: Ticket, *, lock: bool) -> list[Entitlement]:
    """The live entitlements of the ticket's customer assigned to its requester (by
    email, any case), in id order: the one the workflow acts on when there is one."""
    entitlements = Entitlement.objects.select_related("product")
    if lock:
        entitlements = entitlements.select_for_update(of=("self",))
    return list(
        entitlements.filter(
            customer_id=ticket.customer_id,
            state__in=LIVE,
            assignee_email__iexact=ticket.requester_email,
        ).order_by("pk")
    )


def _reissue(
    ticket: Ticket, blocked: list[str], *, lock: bool
) -> tuple[list[Entitlement], list[str]]:
    """The candidates and the workflow's steps, or why it cannot run (into ``blocked``)."""
    if ticket.customer_id is None:
        blocked.append("The ticket has no customer, so there is no code of theirs to reissue.")
        return [], []
    if not ticket.requester_email:
        blocked.append(
            "The ticket has no requester email, so no entitlement can be found for them "
            "and the new code could not be sent."
        )
        return [], []
    found = _candidates(ticket, lock=lock)
    who = f"{ticket.customer.name} has"
    if not found:
        blocked.append(
            f"{who} no live entitlement assigned to {ticket.requester_email}: "
            "there is no code to reissue."
        )
        return found, []
    if len(found) > 1:
        codes = ", ".join(e.code for e in found)
        blocked.append(
            f"{who} {len(found)} live entitlements assigned to {ticket.requester_email} "
            f"({codes}): the macro cannot tell which code to reissue. Reissue it from the "
            "entitlement's page, then reply."
        )
        return found, []
    [old] = found
    return found, [
        f"Revoke {old.code} ({old.product.name}, {old.get_state_display().lower()}, "
        f"{old.assignee_email}): the code stops working.",
        f"Issue a new entitlement of the same order, product and term in its place, with a "
        f"fresh code, assigned to {old.assignee_email}.",
        "Put the new code into the reply.",
    ]


def _values(ticket: Ticket, by: AbstractBaseUser, assignee: AbstractBaseUser | None) -> dict:
    return {
        "ticket_number": str(ticket.pk),
        "ticket_subject": one_line(ticket.subject),
        "requester_name": one_line(ticket.requester_name) or ticket.requester_email,
        "requester_email": ticket.requester_email,
        "customer": ticket.customer.name if ticket.customer else "",
        "assignee": person_name(assignee) if assignee is not None else "",
        "agent": person_name(by),
        "new_code": NEW_CODE_SLOT,
    }


def macro_preview(
    *, ticket: Ticket, macro: Macro, by: AbstractBaseUser, lock: bool = False
) -> MacroPreview:
    """What applying ``macro`` to ``ticket`` as ``by`` would do; changes nothing.

    Takes ``ticket`` with its customer, assignee and tags, ``macro`` with its assignee
    and tags, as read (``macro_apply`` passes them locked, and ``lock`` locks the
    entitlements read): at most two queries more, whether the assignee may work tickets
    and, for the workflow, the requester's entitlements."""
    blocked: list[str] = []
    refused: list[str] = []
    if not macro.is_active:
        blocked.append(f"The macro “{macro.name}” is not active.")

    # Fields, in the order ticket_update applies them (the status after the reply).
    changes: list[FieldChange] = []
    update: dict = {}
    if macro.set_priority:
        changes.append(
            FieldChange(
                "priority",
                "Priority",
                ticket.get_priority_display(),
                Ticket.Priority(macro.set_priority).label,
            )
        )
        if macro.set_priority != ticket.priority:
            update["priority"] = macro.set_priority
    assignee = ticket.assignee
    if macro.assign:
        target = {
            Macro.Assign.ME: by,
            Macro.Assign.PERSON: macro.assignee,
            Macro.Assign.NOBODY: None,
        }[macro.assign]
        changes.append(
            FieldChange("assignee", "Assignee", person_name(ticket.assignee), person_name(target))
        )
        if (
            target is not None
            and target.pk != ticket.assignee_id
            and not tickets.ticket_assignees().filter(pk=target.pk).exists()
        ):
            blocked.append(f"{person_name(target)} may not work tickets, so cannot be assigned.")
        if (target.pk if target else None) != ticket.assignee_id:
            update["assignee"] = target
        assignee = target
    current = list(ticket.tags.all())
    added, removed = list(macro.add_tags.all()), list(macro.remove_tags.all())
    if added or removed:
        gone = {tag.pk for tag in removed}
        tags = {tag.pk: tag for tag in [*current, *added] if tag.pk not in gone}
        old = ", ".join(sorted(tag.name for tag in current)) or "none"
        new = ", ".join(sorted(tag.name for tag in tags.values())) or "none"
        changes.append(FieldChange("tags", "Tags", old, new))
        if set(tags) != {tag.pk for tag in current}:
            update["tags"] = set(tags.values())
    if macro.set_queue:
        queue = one_line(macro.set_queue)[:50]
        changes.append(FieldChange("queue", "Queue", ticket.queue or "none", queue))
        if queue != ticket.queue:
            update["queue"] = queue

    steps: list[str] = []
    candidates: list[Entitlement] = []
    if macro.workflow == Macro.Workflow.REISSUE_CODE:
        candidates, steps = _reissue(ticket, blocked, lock=lock)
        if not by.has_perm(ENTITLEMENT_CHANGE):
            refused.append(
                "You may not revoke and reissue codes (it needs the permission "
                f"{ENTITLEMENT_CHANGE}): applying this macro would be refused. "
                "Ask an ops lead to reissue the code."
            )

    reply = ""
    if macro.reply.strip():
        try:
            reply = placeholders_fill(macro.reply, _values(ticket, by, assignee)).strip()
        except PlaceholderError as error:
            blocked.append(f"The macro's reply cannot be filled: {error} Correct the macro.")
        else:
            if not reply:
                blocked.append("The macro's reply is empty for this ticket.")
            elif not ticket.requester_email:
                blocked.append(
                    "The ticket has no requester email, so the macro's reply cannot be sent."
                )
    if steps and NEW_CODE_SLOT not in reply:
        blocked.append(
            "The macro's reply does not carry {new_code}, so the new code would reach "
            "nobody. Correct the macro."
        )

    status = macro.set_status or Macro.WORKFLOW_STATUS.get(macro.workflow, "")
    then_status = None
    if status:
        changes.append(
            FieldChange(
                "status", "Status", ticket.get_status_display(), Ticket.Status(status).label
            )
        )
        if status != ticket.status:
            then_status = status
    if not (update or then_status or reply or steps or blocked):
        blocked.append(
            f"The ticket is already as “{macro.name}” would leave it: applying it would "
            "change nothing."
        )

    state = (
        PreviewState()
        .add(
            "ticket",
            f"ticket #{ticket.pk}",
            subject=ticket.subject,
            status=ticket.status,
            priority=ticket.priority,
            assignee=ticket.assignee_id,
            queue=ticket.queue,
            tags=sorted(tag.pk for tag in current),
            customer=ticket.customer_id,
            requester=[ticket.requester_name, ticket.requester_email],
        )
        .add(
            "macro",
            f"the macro “{macro.name}”",
            name=macro.name,
            active=macro.is_active,
            reply=macro.reply,
            status=macro.set_status,
            priority=macro.set_priority,
            queue=macro.set_queue,
            assign=[macro.assign, macro.assignee_id],
            tags=[sorted(t.pk for t in added), sorted(t.pk for t in removed)],
            workflow=macro.workflow,
        )
        .add("reply", "the reply", text=reply)
        .rows("entitlement", candidates, SHOWN, label="code")
    )
    return MacroPreview(
        ticket=ticket,
        macro=macro,
        by=by,
        reply=reply,
        changes=changes,
        steps=steps,
        entitlement=candidates[0] if steps else None,
        blocked=blocked,
        refused=refused,
        state=state,
        update=update,
        then_status=then_status,
    )


def macro_preview_for(*, ticket_id, macro_id, by: AbstractBaseUser) -> MacroPreview | None:
    """The preview of the page (None when the ticket or the macro does not exist)."""
    ticket, macro = _ticket_read(ticket_id), _macro_read(macro_id)
    if ticket is None or macro is None:
        return None
    return macro_preview(ticket=ticket, macro=macro, by=by)


def macro_apply(
    *, ticket: Ticket, macro: Macro, by: AbstractBaseUser, previewed: str | None
) -> list[str]:
    """Apply ``macro`` to ``ticket`` as ``by`` exactly as the preview whose token is
    ``previewed`` showed it: the workflow (through the entitlement service and its
    permission), the field changes, the reply and the status, all or nothing, the
    ticket's changes as one history entry with the reason "macro: <name>". Returns what
    was done, a sentence each.

    Only a person who works tickets applies a macro (``MacroPermissionError``). Refuses
    with ``MacroError`` and changes nothing when anything the preview showed changed
    since, when the preview said it cannot be applied, or when a service refuses a step.
    Not idempotent by itself: a second POST of the same preview finds the ticket changed
    (or the reply already there, the status set) and is refused as stale."""
    if by is None:
        raise MacroPermissionError("A macro is applied by a person: name who applies it.")
    require_permission(by, APPLY, MacroPermissionError)
    try:
        with transaction.atomic():
            locked = _ticket_read(ticket.pk, lock=True)
            fresh = _macro_read(macro.pk, lock=True)
            if locked is None or fresh is None:
                raise MacroError("The ticket or the macro no longer exists.")
            preview = macro_preview(ticket=locked, macro=fresh, by=by, lock=True)
            changed = preview_changes(previewed, preview.state)
            if changed:
                raise MacroError(stale_message(changed))
            if preview.blocked:
                raise MacroError(" ".join(preview.blocked))
            return _applied(preview)
    except (tickets.TicketActionError, EntitlementError) as error:
        raise MacroError(str(error)) from None


def _applied(preview: MacroPreview) -> list[str]:
    ticket, macro, by = preview.ticket, preview.macro, preview.by
    reason = f"macro: {macro.name}"
    actor = current_actor()
    done = []
    with (
        history_as_one(ticket, reason=reason),
        acting_as(actor.label, user=actor.user, reason=reason),
    ):
        reply = preview.reply
        if macro.workflow == Macro.Workflow.REISSUE_CODE:
            old = preview.entitlement
            with acting_for(ticket):
                new = entitlement_replace(
                    entitlement=old, reason=f"{reason} (ticket #{ticket.pk})", by=by
                )
            reply = reply.replace(NEW_CODE_SLOT, new.code)
            done.append(
                f"{old.code} revoked; {new.code} issued in its place, assigned to "
                f"{new.assignee_email}."
            )
        done += tickets.ticket_update(
            ticket=ticket,
            by=by,
            changes=preview.update,
            comment_kind=TicketComment.Kind.REPLY if reply else None,
            body=reply,
            then_status=preview.then_status,
        )
    return done
