"""Support's own admin pages: the triage queue and its one-click ticket actions, the
Retry buttons of a webhook event and of a parked reply. (The ticket page itself is
``TicketAdmin``'s change form.)"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.validators import validate_slug
from django.db.models import QuerySet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from kit.admin import AdminListView, back_redirect, form_errors, report_refusal
from kit.params import object_or_404
from support import sla, tickets
from support.filters import TicketQueueFilter, queue_order, queue_rows
from support.models import Tag, Ticket, TicketComment, WebhookEvent
from support.webhooks import event_retry


def span(delta: dt.timedelta) -> str:
    """A duration as the queue says it: "35 min", "2 h 15 min" (under 10 hours), "30 h"
    (under two days), "3 d"; whole units, rounded down."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 10:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} d"


def _clock_text(name: str, due: dt.datetime, warn: dt.datetime | None, now: dt.datetime):
    label = sla.CLOCK_NAMES[name]
    if due <= now:
        return f"{label} overdue by {span(now - due)}", "overdue"
    return f"{label} in {span(due - now)}", "soon" if warn is not None and warn <= now else "ok"


def _running(ticket: Ticket) -> list[tuple[str, dt.datetime, dt.datetime | None]]:
    """(clock, deadline, warning) of each clock the ticket's stored fields say runs."""
    running = []
    if ticket.first_responded_at is None and ticket.first_response_due_at is not None:
        running.append(
            (sla.FIRST_RESPONSE, ticket.first_response_due_at, ticket.first_response_warn_at)
        )
    if ticket.next_response_due_at is not None:
        running.append(
            (sla.NEXT_RESPONSE, ticket.next_response_due_at, ticket.next_response_warn_at)
        )
    if ticket.resolution_due_at is not None:
        running.append((sla.RESOLUTION, ticket.resolution_due_at, ticket.resolution_warn_at))
    return running


def clock_state(ticket: Ticket, now: dt.datetime) -> tuple[str, str]:
    """The clock that matters now, as (text, tone): the running one with the nearest
    deadline ("first response overdue by 2 h", "next response in 35 min", "resolution in
    3 d"), or "paused: waiting on customer". Tone: "overdue", "soon" (its warning share
    passed), "ok", "paused", or "" when no clock runs (solved, closed)."""
    if ticket.status not in Ticket.OPEN_STATES:
        return "—", ""
    if ticket.status == Ticket.Status.PENDING:
        return "paused: waiting on customer", "paused"
    running = _running(ticket)
    if not running:
        return "—", ""
    name, due, warn = min(running, key=lambda clock: clock[1])
    return _clock_text(name, due, warn, now)


def clock_lines(ticket: Ticket, now: dt.datetime) -> list[tuple[str, str, str, str]]:
    """Each clock of the ticket page, as (testid, label, text, tone): the first response
    (answered when, or how it stands), the next response while one is awaited, the
    resolution while the ticket is open; paused ones say so."""
    lines = []
    is_open = ticket.status in Ticket.OPEN_STATES
    waiting = ticket.status == Ticket.Status.PENDING
    running = {name: (due, warn) for name, due, warn in _running(ticket)}
    for name in (sla.FIRST_RESPONSE, sla.NEXT_RESPONSE, sla.RESOLUTION):
        label = sla.CLOCK_NAMES[name].capitalize()
        testid = name.replace("_", "-")
        if name == sla.FIRST_RESPONSE and ticket.first_responded_at is not None:
            when = timezone.localtime(ticket.first_responded_at)
            late = (
                ticket.first_response_due_at is not None
                and ticket.first_responded_at > ticket.first_response_due_at
            )
            text = f"answered {when:%-d %b %Y %H:%M}" + (" (late)" if late else "")
            lines.append((testid, label, text, "overdue" if late else ""))
        elif not is_open:
            continue
        elif name in running and running[name][0] <= now:
            due, warn = running[name]
            lines.append((testid, label, _clock_text(name, due, warn, now)[0], "overdue"))
        elif waiting and (name != sla.NEXT_RESPONSE or name in running):
            lines.append((testid, label, "paused: waiting on customer", "paused"))
        elif name in running:
            due, warn = running[name]
            text, tone = _clock_text(name, due, warn, now)
            due_local = timezone.localtime(due)
            lines.append((testid, label, f"{text} (due {due_local:%-d %b %Y %H:%M})", tone))
    return lines


class TriageQueueView(AdminListView):
    """What to answer next: open tickets by risk (``queue_order``), each with the clock
    that matters now."""

    title = "Triage queue"
    permission_required = ("support.view_ticket",)
    template_name = "support/triage_queue.html"
    filterset_class = TicketQueueFilter

    @staticmethod
    def rows_for(user) -> QuerySet[Ticket]:
        """The tickets the queue lists to ``user`` before its filters: every ticket, as
        every role reads them. A saved view's count (opsdesk.saved_views) counts these, so
        it is what the view's page lists."""
        return Ticket.objects.all()

    def get_queryset(self):
        self.now = timezone.now()
        tickets = self.filtered(self.rows_for(self.request.user))
        return queue_order(tickets, now=self.now, rows=queue_rows)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        rows = [(ticket, *clock_state(ticket, self.now)) for ticket in context["object_list"]]
        context.update(
            rows=rows,
            can_change=self.request.user.has_perm("support.change_ticket"),
            priorities=Ticket.Priority.choices,
            tag_names=list(Tag.objects.values_list("name", flat=True)),
        )
        return context


class TicketActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[
            ("assign_me", ""),
            ("assign", ""),
            ("priority", ""),
            ("tag", ""),
            ("untag", ""),
            ("resolve", ""),
            ("status", ""),
        ]
    )
    priority = forms.ChoiceField(choices=Ticket.Priority.choices, required=False)
    status = forms.ChoiceField(choices=Ticket.Status.choices, required=False)
    tag = forms.CharField(max_length=50, required=False, validators=[validate_slug])
    # Empty: nobody (unassign).
    assignee = forms.ModelChoiceField(queryset=tickets.ticket_assignees(), required=False)


@require_POST
def ticket_act(request, object_id: str):
    """One click in the triage queue: assign (to me, to someone, to nobody), set priority
    or status, add or remove a tag, resolve."""
    if not request.user.has_perm("support.change_ticket"):
        raise PermissionDenied
    ticket = object_or_404(Ticket, object_id)
    back = back_redirect(request, reverse("admin:support_ticket_queue"))
    form = TicketActionForm(request.POST)
    if not form.is_valid():
        report_refusal(request, form_errors(form))
        return back
    action = form.cleaned_data["action"]
    by = request.user
    try:
        if action == "assign_me":
            message = tickets.ticket_assign(ticket=ticket, assignee=by, by=by)
        elif action == "assign":
            assignee = form.cleaned_data["assignee"]
            message = (
                tickets.ticket_assign(ticket=ticket, assignee=assignee, by=by)
                if assignee
                else tickets.ticket_unassign(ticket=ticket, by=by)
            )
        elif action == "priority":
            message = tickets.ticket_set_priority(
                ticket=ticket, priority=form.cleaned_data["priority"], by=by
            )
        elif action == "status":
            message = tickets.ticket_set_status(
                ticket=ticket, status=form.cleaned_data["status"], by=by
            )
        elif action == "untag":
            tag = Tag.objects.filter(name=form.cleaned_data["tag"].lower()).first()
            if tag is None:
                raise tickets.TicketActionError("There is no such tag.")
            message = tickets.ticket_remove_tag(ticket=ticket, tag=tag, by=by)
        elif action == "tag":
            name = form.cleaned_data["tag"].lower()
            if not name:
                raise tickets.TicketActionError("Type a tag name first.")
            tag = Tag.objects.filter(name=name).first()
            if tag is None:
                # A new tag is a new Tag row: only for who may add tags.
                if not request.user.has_perm("support.add_tag"):
                    raise tickets.TicketActionError(
                        f"There is no tag “{name}”, and making one needs the permission "
                        "support.add_tag: pick an existing tag."
                    )
                tag, _ = Tag.objects.get_or_create(name=name)
            message = tickets.ticket_add_tag(ticket=ticket, tag=tag, by=by)
        else:
            message = tickets.ticket_resolve(ticket=ticket, by=by)
    except tickets.TicketActionError as error:
        report_refusal(request, error)
    else:
        messages.success(request, message)
    return back


@require_POST
def event_retry_view(request, object_id: str):
    """The "Retry" button on a failed event's page."""
    if not request.user.has_perm("support.change_webhookevent"):
        raise PermissionDenied
    event = object_or_404(WebhookEvent, object_id)
    page = reverse("admin:support_webhookevent_change", args=[event.pk])
    if event_retry(event=event, actor_reason="retry requested in the admin"):
        messages.success(request, "Queued again: a worker processes it within seconds.")
    else:
        messages.warning(
            request, f"Not retried: only failed events retry, and this one is {event.status}."
        )
    return HttpResponseRedirect(page)


class ReplyRetryForm(forms.Form):
    reply = forms.IntegerField(min_value=1, max_value=2**63 - 1)


@require_POST
def reply_retry_view(request, object_id: str):
    """The "Retry" button on a reply that could not be sent (the ticket's page)."""
    if not request.user.has_perm(tickets.CHANGE):
        raise PermissionDenied
    ticket = object_or_404(Ticket, object_id)
    page = reverse("admin:support_ticket_change", args=[ticket.pk]) + "#conversation"
    form = ReplyRetryForm(request.POST)
    reply = (
        TicketComment.objects.filter(ticket=ticket, pk=form.cleaned_data["reply"]).first()
        if form.is_valid()
        else None
    )
    try:
        if reply is None:
            raise tickets.TicketActionError("There is no such reply on this ticket.")
        message = tickets.reply_retry(comment=reply, actor=request.user)
    except tickets.TicketActionError as error:
        report_refusal(request, error, lead="Not retried.")
    else:
        messages.success(request, message)
    return HttpResponseRedirect(page)
