"""Support: the webhook inbox, tickets and tags, inbound email, and cases (every exception
ops works)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower, Upper
from django.utils import timezone

from audit.models import AuditedModel, audited_history
from customers.models import Contract, Customer, trigram_index
from support import sla


class Tag(AuditedModel):
    name = models.SlugField(max_length=50, unique=True)
    description = models.CharField(max_length=200, blank=True)

    history = audited_history()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StoredEvent(AuditedModel):
    """What every input stored before it is processed keeps about its processing (product
    webhook events, inbound email): its status, the attempts of ``kit.stored_events`` and
    what went wrong or changed less than asked for."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected"

    status = models.CharField(max_length=20, choices=Status, default=Status.PENDING)
    error = models.TextField(blank=True)
    warning = models.TextField(
        blank=True, help_text="Why a processed input changed less than it asked for."
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="When a failed attempt is tried again."
    )
    received_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text="When it happened; given by the source (webhook, import) when known.",
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-received_at"]


class WebhookEvent(StoredEvent):
    """A webhook as received (the product's or the CRM's): the source of truth for its
    processing."""

    class Source(models.TextChoices):
        PRODUCT = "product", "Product"
        CRM = "crm", "CRM"

    # Each source names its deliveries itself: an id is unique within its source.
    webhook_id = models.CharField(max_length=200)
    source = models.CharField(max_length=20, choices=Source, default=Source.PRODUCT)
    type = models.CharField(max_length=100, blank=True)
    tenant_id = models.CharField(max_length=100, blank=True)
    payload = models.JSONField(null=True, blank=True)
    raw_body = models.TextField(blank=True, help_text="Kept when the body is not valid JSON.")
    details = models.JSONField(
        default=list, blank=True, help_text="Why a rejected event did not match the schema."
    )

    # The body as received never changes; history tracks what happens to the event
    # (status, attempts, errors) without a second copy of every payload.
    history = audited_history(excluded_fields=["payload", "raw_body"])

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "processed", "failed", "rejected"]),
                name="webhookevent_status_valid",
            ),
            # A retried delivery is the same event (intake's ON CONFLICT); the id first, so
            # the index also serves a look-up by id alone.
            models.UniqueConstraint(
                fields=["webhook_id", "source"], name="webhookevent_id_per_source"
            ),
            models.CheckConstraint(
                condition=Q(source__in=["product", "crm"]), name="webhookevent_source_valid"
            ),
        ]
        indexes = [
            # The sweep: pending events whose (next) attempt is due.
            models.Index(
                fields=["next_attempt_at", "received_at"],
                condition=Q(status="pending"),
                name="webhookevent_pending",
            ),
            # The freshness panel (opsdesk.freshness): a source's latest deliveries and
            # those of the last day and week; its failed ones and the latest error.
            models.Index(fields=["source", "received_at"], name="webhookevent_source_received"),
            models.Index(
                fields=["source", "received_at"],
                condition=Q(status="failed"),
                name="webhookevent_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type or 'unknown'} {self.webhook_id}"


class Ticket(AuditedModel):
    class Priority(models.TextChoices):
        LOW = "low", "Low"
        NORMAL = "normal", "Normal"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PENDING = "pending", "Waiting on customer"
        SOLVED = "solved", "Solved"
        CLOSED = "closed", "Closed"

    # Still being worked: in the triage queue, counted as open everywhere.
    OPEN_STATES = (Status.OPEN, Status.PENDING)

    class Category(models.TextChoices):
        ACCESS = "access", "Access"
        BILLING = "billing", "Billing"
        BUG = "bug", "Bug"
        HOW_TO = "how-to", "How-to"
        INCIDENT = "incident", "Incident"
        OTHER = "other", "Other"

    customer = models.ForeignKey(
        Customer,
        # Tickets are the support record of a customer; keep the link, never cascade.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
    )
    subject = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    requester_email = models.EmailField(blank=True)
    requester_name = models.CharField(max_length=200, blank=True)
    category = models.CharField(max_length=20, choices=Category, default=Category.OTHER)
    priority = models.CharField(max_length=10, choices=Priority, default=Priority.NORMAL)
    status = models.CharField(max_length=10, choices=Status, default=Status.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_tickets",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets")
    queue = models.CharField(max_length=50, blank=True, help_text="The team queue it waits in.")
    webhook_event = models.ForeignKey(
        WebhookEvent,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        help_text="The event this ticket came from, if any.",
    )
    # Product events: which tenant sent it (kept for unmatched ones), and for error
    # spikes the error group and how it developed.
    tenant_id = models.CharField(max_length=100, blank=True)
    fingerprint = models.CharField(max_length=200, blank=True)
    occurrence_count = models.PositiveIntegerField(default=0)
    latest_error_rate = models.FloatField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # One error at several customers (docs/product.md#problems): set by support.problems
    # (a spike's fingerprint at a second tenant, or support by hand).
    problem = models.ForeignKey(
        "Problem",
        # A problem is the record of what its tickets were part of: kept while they are.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        help_text="The problem it is part of: one error seen at several customers.",
    )
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    # Started by a customer's message (docs/contracts/email.md, Effects), stopped by the
    # next reply.
    next_response_due_at = models.DateTimeField(null=True, blank=True)
    # Service levels (docs/product.md#service-levels): the policy the clocks follow and
    # what support.sla says of them, kept by support.ticket_sla at every event. A
    # deadline is when a clock's target is reached, a warning when its
    # OPSDESK_SLA_WARN_SHARE is (both only while it runs; a stopped first response and
    # resolution keep their deadline).
    sla_policy = models.ForeignKey(
        "SlaPolicy",
        # A policy that tickets followed is kept: their deadlines were its promises.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tickets",
        help_text="The service level its clocks follow (from the customer's active contract).",
    )
    first_response_warn_at = models.DateTimeField(null=True, blank=True)
    next_response_warn_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    resolution_warn_at = models.DateTimeField(null=True, blank=True)
    sla_paused_at = models.DateTimeField(
        null=True, blank=True, help_text="Since when its clocks wait on the customer."
    )
    # The nearest deadline and warning of the clocks that run (none while waiting on the
    # customer): the queue's order (support.filters.queue_order).
    sla_due_at = models.DateTimeField(null=True, blank=True)
    sla_warn_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text="When it happened; given by the source (webhook, import) when known.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = audited_history(m2m_fields=[tags])

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__in=["low", "normal", "high", "urgent"]),
                name="ticket_priority_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "pending", "solved", "closed"]),
                name="ticket_status_valid",
            ),
            # One open ticket per (tenant, error fingerprint); later spikes add to it.
            models.UniqueConstraint(
                fields=["tenant_id", "fingerprint"],
                condition=Q(status__in=["open", "pending"]) & ~Q(fingerprint=""),
                name="ticket_one_open_per_fingerprint",
            ),
        ]
        indexes = [
            # Triage queue: open tickets by deadline.
            models.Index(fields=["status", "first_response_due_at"], name="ticket_status_due"),
            # Customer page: a customer's tickets, newest first.
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_recent"),
            # Triage queue (support.filters.QueueOrder), each part in its order from an
            # index, the warning checked in the index: the tickets at risk of one
            # priority by deadline ...
            models.Index(
                fields=["priority", "sla_due_at", "sla_warn_at"],
                condition=Q(status__in=["open", "pending"]),
                name="ticket_queue_at_risk",
            ),
            # ... the other running clocks by deadline, then the rest oldest first.
            models.Index(
                F("sla_due_at").asc(nulls_last=True),
                "created_at",
                "id",
                "sla_warn_at",
                condition=Q(status__in=["open", "pending"]),
                name="ticket_queue_order",
            ),
            # The warning sweep (support.sla_alerts): per clock, the open tickets whose
            # warning has come, oldest first.
            *(
                models.Index(
                    fields=[f"{clock}_warn_at"],
                    condition=Q(status="open", **{f"{clock}_warn_at__isnull": False}),
                    name=f"ticket_{clock}_warn",
                )
                for clock in (sla.FIRST_RESPONSE, sla.NEXT_RESPONSE, sla.RESOLUTION)
            ),
            # Problems (support.problems): the open tickets of one error fingerprint, whatever
            # their tenant (the unique constraint above leads with the tenant).
            models.Index(
                fields=["fingerprint"],
                condition=Q(status__in=["open", "pending"]) & ~Q(fingerprint=""),
                name="ticket_open_fingerprint",
            ),
            # Customer health: each customer's open urgent tickets, counted per customer
            # for the digest (a few entries, not the customer's every ticket).
            models.Index(
                fields=["customer"],
                condition=Q(priority="urgent", status__in=["open", "pending"]),
                name="ticket_customer_urgent_open",
            ),
            # Customer health (opsdesk.health.flags, SLA breach): each customer's open
            # tickets past their deadline, read per customer by deadline (the queue's
            # ticket_queue_order has no customer: read per customer it scans every breach).
            models.Index(
                fields=["customer", "sla_due_at"],
                condition=Q(status="open"),
                name="ticket_customer_open_due",
            ),
            # The global search's tickets, newest first: walked until enough match a
            # common word, instead of reading and sorting every match (opsdesk.search).
            models.Index(F("created_at").desc(), F("id").desc(), name="ticket_newest"),
            # Admin search and the queue's customer filter (tenant id, any case).
            trigram_index("subject", "ticket_subject_trgm"),
            trigram_index("requester_email", "ticket_requester_email_trgm"),
            models.Index(Upper("tenant_id"), name="ticket_tenant_upper"),
            # Admin search by a whole address (customers.admin._holding).
            models.Index(Lower("requester_email"), name="ticket_requester_email_lower"),
        ]

    def __str__(self) -> str:
        return self.subject

    @property
    def is_open(self) -> bool:
        """In ``OPEN_STATES``: what pages ask instead of spelling the states."""
        return self.status in self.OPEN_STATES


def _zone_default() -> str:
    return settings.TIME_ZONE


class SlaPolicy(AuditedModel):
    """A service level (docs/product.md#service-levels): which hours count and, per
    priority, its targets (``SlaTarget``). A ticket follows the policy naming its
    customer's active contract's plan, else the default one (``support.ticket_sla``)."""

    name = models.CharField(max_length=100, unique=True)
    plans = ArrayField(
        models.CharField(max_length=20, choices=Contract.Plan),
        default=list,
        blank=True,
        help_text="The contract plans it applies to (a plan belongs to one policy).",
    )
    is_default = models.BooleanField(
        default=False,
        help_text="For customers without an active contract, unknown customers and plans "
        "no policy names (one policy is the default).",
    )
    time_zone = models.CharField(
        max_length=64, default=_zone_default, help_text="The zone of the business hours."
    )
    business_hours = models.JSONField(
        default=dict,
        help_text='Per weekday, from-to pairs: {"mon": [["09:00", "17:00"]], "tue": ...}; '
        'days not named have none, "24:00" ends a day.',
    )

    history = audited_history()

    class Meta:
        ordering = ["name"]
        verbose_name = "SLA policy"
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="slapolicy_one_default",
                violation_error_message="Another policy is the default; one policy is.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        errors = {}
        try:
            sla.week_parse(self.business_hours)
        except sla.CalendarError as error:
            errors["business_hours"] = error.messages
        if not sla.zone_valid(self.time_zone or ""):
            errors["time_zone"] = [
                f"“{self.time_zone}” is not a time zone; use a name like Europe/Berlin or UTC."
            ]
        unknown = sorted(set(self.plans or ()) - set(Contract.Plan.values))
        if unknown:
            errors["plans"] = [f"“{', '.join(unknown)}” is not a plan."]
        elif self.plans:
            taken = {
                plan: other.name
                for other in SlaPolicy.objects.exclude(pk=self.pk).filter(
                    plans__overlap=list(self.plans)
                )
                for plan in other.plans
                if plan in self.plans
            }
            if taken:
                errors["plans"] = [
                    f"{Contract.Plan(plan).label} already follows “{name}”: a plan has one policy."
                    for plan, name in sorted(taken.items())
                ]
        if errors:
            raise ValidationError(errors)


class SlaTarget(AuditedModel):
    """What a policy promises for one priority, in minutes of business time (or around
    the clock)."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="targets")
    priority = models.CharField(max_length=10, choices=Ticket.Priority)
    first_response_minutes = models.PositiveIntegerField()
    next_response_minutes = models.PositiveIntegerField(
        help_text="From each customer message to the next reply."
    )
    resolution_minutes = models.PositiveIntegerField()
    business_hours = models.BooleanField(
        default=True, help_text="Count the policy's business hours only; off: around the clock."
    )

    history = audited_history()

    class Meta:
        ordering = ["policy", "id"]
        verbose_name = "SLA target"
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "priority"], name="slatarget_one_per_priority"
            ),
            models.CheckConstraint(
                condition=Q(priority__in=["low", "normal", "high", "urgent"]),
                name="slatarget_priority_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    first_response_minutes__gte=1,
                    next_response_minutes__gte=1,
                    resolution_minutes__gte=1,
                ),
                name="slatarget_minutes_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy}: {self.get_priority_display()}"


class SlaHoliday(AuditedModel):
    """A day a policy's business hours do not count (a date of its time zone)."""

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    history = audited_history()

    class Meta:
        ordering = ["policy", "date"]
        verbose_name = "SLA holiday"
        constraints = [
            models.UniqueConstraint(fields=["policy", "date"], name="slaholiday_one_per_day"),
        ]

    def __str__(self) -> str:
        return f"{self.date:%d %b %Y} {self.name}".strip()


class SlaAlert(AuditedModel):
    """A warning or breach of one ticket's clock, told once (``support.sla_alerts``): the
    claim of the sweep that tells it. Unique per ticket, clock, kind and deadline, so two
    sweeps, or two schedulers, tell nobody twice, and a deadline that moved (a priority
    raised, a customer's new message) is a new one. ``notified`` is false for a deadline
    found past ``OPSDESK_SLA_ALERT_WINDOW_HOURS`` (the sweep was not running then): it is
    recorded, not told late."""

    class Clock(models.TextChoices):
        FIRST_RESPONSE = sla.FIRST_RESPONSE, "First response"
        NEXT_RESPONSE = sla.NEXT_RESPONSE, "Next response"
        RESOLUTION = sla.RESOLUTION, "Resolution"

    class Kind(models.TextChoices):
        WARNING = "warning", "Warning"
        BREACH = "breach", "Breach"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="sla_alerts")
    clock = models.CharField(max_length=20, choices=Clock)
    kind = models.CharField(max_length=10, choices=Kind)
    due_at = models.DateTimeField(help_text="The deadline warned of, or missed.")
    notified = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    history = audited_history()

    class Meta:
        ordering = ["ticket", "created_at"]
        verbose_name = "SLA alert"
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "clock", "kind", "due_at"], name="slaalert_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_clock_display()} {self.kind} of ticket #{self.ticket_id}"


class Problem(AuditedModel):
    """One error seen at several customers: an ``incident.error_spike`` fingerprint at two
    tenants or more, with the tickets it caused (``Ticket.problem``), worked together
    (support.problems: linked, updated and solved as one)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        SOLVED = "solved", "Solved"

    fingerprint = models.CharField(max_length=200, help_text="The error group the product names.")
    title = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status, default=Status.OPEN)
    opened_at = models.DateTimeField(default=timezone.now, editable=False)
    solved_at = models.DateTimeField(null=True, blank=True)

    history = audited_history()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "solved"]), name="problem_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status="open", solved_at__isnull=True)
                | Q(status="solved", solved_at__isnull=False),
                name="problem_solved_has_time",
            ),
            # One open problem per fingerprint; it also serves finding it for each spike.
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=Q(status="open"),
                name="problem_one_open_per_fingerprint",
            ),
        ]

    def __str__(self) -> str:
        return f"Problem #{self.pk}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class InboundEmail(StoredEvent):
    """One email received for support (docs/contracts/email.md, Inbound), stored exactly as
    it arrived before anything reads it; the worker matches it to a ticket and records its
    effect. Like a webhook event, its status says where it stands and a failed one can be
    retried."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        IMAP = "imap", "IMAP"

    class Kind(models.TextChoices):
        MESSAGE = "message", "Message"
        AUTO_REPLY = "auto_reply", "Auto-reply"
        BOUNCE = "bounce", "Bounce"

    class MatchedBy(models.TextChoices):
        ADDRESS = "address", "Reply-To address"
        THREAD = "thread", "In-Reply-To / References"
        SUBJECT = "subject", "[#id] in the subject"
        NEW_TICKET = "new_ticket", "New ticket"

    source = models.CharField(max_length=10, choices=Source)
    # What the source calls this delivery: the webhook-id, or the mailbox and UID of IMAP.
    delivery_id = models.CharField(max_length=255, unique=True)
    # The message's own Message-ID (without angle brackets' surroundings trimmed): the same
    # message delivered both ways, or twice, is stored once.
    message_id = models.CharField(max_length=998, blank=True)
    raw = models.BinaryField(editable=False, help_text="The message exactly as received.")
    size = models.PositiveIntegerField(default=0)
    from_address = models.CharField(max_length=254, blank=True)
    from_name = models.CharField(max_length=200, blank=True)
    subject = models.CharField(max_length=300, blank=True)
    kind = models.CharField(max_length=12, choices=Kind, blank=True)
    ticket = models.ForeignKey(
        "Ticket",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inbound_emails",
    )
    matched_by = models.CharField(max_length=12, choices=MatchedBy, blank=True)

    # The message never changes; history tracks what happens to it.
    history = audited_history(excluded_fields=["raw"])

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~Q(message_id=""),
                name="inboundemail_message_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "processed", "failed", "rejected"]),
                name="inboundemail_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(source__in=["webhook", "imap"]), name="inboundemail_source_valid"
            ),
        ]
        indexes = [
            # The sweep: pending messages whose (next) attempt is due.
            models.Index(
                fields=["next_attempt_at", "received_at"],
                condition=Q(status="pending"),
                name="inboundemail_pending",
            ),
            models.Index(fields=["ticket", "received_at"], name="inboundemail_ticket"),
            # The freshness panel (opsdesk.freshness), as the webhook events'.
            models.Index(fields=["received_at"], name="inboundemail_received"),
            models.Index(
                fields=["received_at"], condition=Q(status="failed"), name="inboundemail_failed"
            ),
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id or self.delivery_id


class EmailAttachment(AuditedModel):
    """A file that came with an inbound email: kept with the message, downloadable by staff
    who can view its ticket, never served inline. One over ``OPSDESK_ATTACHMENT_MAX_MB`` is
    listed (name, type, size) with why its content was not kept."""

    inbound = models.ForeignKey(InboundEmail, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveIntegerField()
    content = models.BinaryField(editable=False, blank=True)
    refused = models.CharField(max_length=200, blank=True, help_text="Why it was not kept.")

    history = audited_history(excluded_fields=["content"])

    class Meta:
        ordering = ["inbound", "id"]

    def __str__(self) -> str:
        return self.filename


class TicketComment(AuditedModel):
    """One entry of a ticket's conversation: an internal note or a reply staff wrote, or a
    customer's message that came by email (``inbound``, with its ``sender``)."""

    class Kind(models.TextChoices):
        NOTE = "note", "Internal note"
        REPLY = "reply", "Reply to requester"
        CUSTOMER = "customer", "Customer message"

    class Delivery(models.TextChoices):
        PENDING = "pending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Not sent"

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    kind = models.CharField(max_length=10, choices=Kind)
    body = models.TextField()
    # Who wrote a note or a reply; a customer's message has no author but its sender.
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ticket_comments",
    )
    sender = models.CharField(max_length=254, blank=True)
    inbound = models.OneToOneField(
        InboundEmail,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="comment",
        help_text="The email a customer's message came in (its original and attachments).",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Replies go out by email; set when the mail server took it.
    sent_to = models.EmailField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # How sending a reply went (``support.tickets.reply_send``): a reply is pending until
    # it is sent or parked; a parked one is tried again only when someone presses Retry.
    failed_at = models.DateTimeField(
        null=True, blank=True, help_text="When sending was given up (parked until a retry)."
    )
    delivery_error = models.TextField(blank=True, help_text="Why the last attempt failed.")
    delivery_attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # The reply's Message-ID, given on its first attempt and kept through retries, or the
    # customer message's own: the requester's answer (In-Reply-To/References) finds this
    # ticket by either, and the next reply names them.
    message_id = models.CharField(max_length=998, blank=True, editable=False)

    history = audited_history()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # Serves matching an answer's In-Reply-To/References to its ticket.
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~Q(message_id=""),
                name="ticketcomment_message_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["note", "reply", "customer"]),
                name="ticketcomment_kind_valid",
            ),
            models.CheckConstraint(
                condition=~Q(kind="reply") | ~Q(sent_to=""),
                name="ticketcomment_reply_has_recipient",
            ),
            # Staff write notes and replies; a customer's message is the email it came in.
            models.CheckConstraint(
                condition=(
                    Q(kind="customer", author__isnull=True, inbound__isnull=False) & ~Q(sender="")
                )
                | (~Q(kind="customer") & Q(author__isnull=False, inbound__isnull=True)),
                name="ticketcomment_author_or_inbound",
            ),
            models.CheckConstraint(
                condition=Q(sent_at__isnull=True) | Q(failed_at__isnull=True),
                name="ticketcomment_sent_or_failed",
            ),
            models.CheckConstraint(
                condition=Q(kind="reply")
                | Q(sent_at__isnull=True, failed_at__isnull=True, delivery_attempts=0),
                name="ticketcomment_note_not_sent",
            ),
        ]
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="ticketcomment_thread"),
            # The reply sweep (support.tickets.replies_unsent): pending replies, oldest first.
            models.Index(
                fields=["created_at"],
                condition=Q(kind="reply", sent_at__isnull=True, failed_at__isnull=True),
                name="ticketcomment_reply_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.ticket_id}"

    @property
    def delivery_status(self) -> str:
        """A reply's sending: pending, sent or failed (parked); "" for a note."""
        if self.kind != self.Kind.REPLY:
            return ""
        if self.sent_at is not None:
            return self.Delivery.SENT
        return self.Delivery.FAILED if self.failed_at is not None else self.Delivery.PENDING


class Case(AuditedModel):
    """One exception for ops to work, whichever app raised it."""

    class Kind(models.TextChoices):
        FAILED_FULFILMENT = "failed_fulfilment", "Failed fulfilment"
        PROBLEM_REDEMPTION = "problem_redemption", "Problem redemption"
        MISSING_INVOICE = "missing_invoice", "Missing invoice"
        AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
        INVOICE_WITHOUT_CONTRACT = "invoice_without_contract", "Invoice without active contract"
        CURRENCY_MISMATCH = "currency_mismatch", "Currency differs from contract"
        DUPLICATE_INVOICE = "duplicate_invoice", "Duplicate invoices"
        OVERDUE_INVOICE = "overdue_invoice", "Overdue invoice"
        CRM_UNKNOWN_ACCOUNT = "crm_unknown_account", "CRM contract of an unknown account"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        WAIVED = "waived", "Waived"

    OPEN_STATES = (State.OPEN, State.ACKNOWLEDGED)
    CLOSED_STATES = (State.RESOLVED, State.WAIVED)

    kind = models.CharField(max_length=40, choices=Kind)
    state = models.CharField(max_length=20, choices=State, default=State.OPEN)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="cases"
    )
    # The object the case is about (an order, an entitlement, an invoice, ...).
    subject_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    subject_id = models.CharField(max_length=64, blank=True)
    subject = GenericForeignKey("subject_type", "subject_id")
    summary = models.CharField(max_length=300)
    expected = models.TextField(blank=True)
    found = models.TextField(blank=True)
    period = models.DateField(
        null=True, blank=True, help_text="The month a billing finding concerns (its first day)."
    )
    # What the resolution actions need that the subject does not hold (a redemption's
    # user and time, a finding's month): set by whoever raises the case.
    details = models.JSONField(default=dict, blank=True)
    expected_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    found_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # Whoever raises a case may name it, so that raising it again finds the same case.
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_cases",
    )
    opened_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text="When it happened; given by the source (webhook, import) when known.",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closing_note = models.TextField(blank=True)

    history = audited_history()

    class Meta:
        ordering = ["opened_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["open", "acknowledged", "resolved", "waived"]),
                name="case_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["resolved", "waived"])
                | (Q(closed_at__isnull=False) & ~Q(closing_note="")),
                name="case_closed_has_note",
            ),
        ]
        indexes = [
            # The ops inbox: open work, oldest first.
            models.Index(fields=["state", "opened_at"], name="case_state_opened"),
            # Its default view (open or acknowledged) in its order: a page reads 50 entries
            # and joins their customers, not every open case's.
            models.Index(
                fields=["opened_at", "id"],
                condition=Q(state__in=["open", "acknowledged"]),
                name="case_open_queue",
            ),
            models.Index(fields=["subject_type", "subject_id"], name="case_subject"),
            # Reconciliation: the findings of a month.
            models.Index(fields=["period", "kind"], name="case_period_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.summary}"

    @property
    def is_open(self) -> bool:
        """In ``OPEN_STATES``: what pages ask instead of spelling the states."""
        return self.state in self.OPEN_STATES

    @property
    def began_at(self) -> dt.datetime:
        """When the problem began, which its age counts from: the day its raiser recorded
        (``details["since"]``: an overdue invoice's due date), else the first day of the
        month a billing finding concerns, else when the case was opened."""
        since = (self.details or {}).get("since") if isinstance(self.details, dict) else None
        day = dt.date.fromisoformat(since) if since else self.period
        if day is None:
            return self.opened_at
        return min(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC), self.opened_at)


class TriageRule(AuditedModel):
    """A rule support edits in the admin: when a new ticket matches, act on it.

    Rules run in ``position`` order (then id); ``stop_processing`` ends the run.
    """

    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=100)
    is_active = models.BooleanField(default=True)
    match_all = models.BooleanField(
        default=True, help_text="Match when all conditions hold (otherwise: any of them)."
    )
    add_tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    set_priority = models.CharField(max_length=10, choices=Ticket.Priority, blank=True)
    assign_queue = models.CharField(max_length=50, blank=True)
    assign_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    stop_processing = models.BooleanField(default=False)

    history = audited_history(m2m_fields=[add_tags])

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class TriageCondition(AuditedModel):
    class Field(models.TextChoices):
        SUBJECT = "subject", "Ticket subject"
        MESSAGE = "message", "Ticket message"
        CATEGORY = "category", "Ticket category"
        PRIORITY = "priority", "Ticket priority"
        REQUESTER_EMAIL = "requester_email", "Requester email"
        CUSTOMER_MATCHED = "customer_matched", "Customer known (yes/no)"
        CUSTOMER_STATUS = "customer_status", "Customer status"
        PLAN = "plan", "Contract plan"
        CONTRACT_STATUS = "contract_status", "Contract status"
        SEATS = "seats", "Contract seats"
        DAYS_TO_RENEWAL = "days_to_renewal", "Days until the contract ends"

    class Operator(models.TextChoices):
        EQUALS = "equals", "equals"
        NOT_EQUALS = "not_equals", "does not equal"
        CONTAINS = "contains", "contains"
        NOT_CONTAINS = "not_contains", "does not contain"
        IN = "in", "is one of (comma-separated)"
        GTE = "gte", "is at least"
        LTE = "lte", "is at most"
        IS_EMPTY = "is_empty", "is empty"
        IS_NOT_EMPTY = "is_not_empty", "is not empty"

    rule = models.ForeignKey(TriageRule, on_delete=models.CASCADE, related_name="conditions")
    field = models.CharField(max_length=30, choices=Field)
    operator = models.CharField(max_length=20, choices=Operator)
    value = models.CharField(max_length=500, blank=True)

    history = audited_history()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.get_field_display()} {self.get_operator_display()} {self.value}".strip()

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.operator in (self.Operator.GTE, self.Operator.LTE):
            try:
                float(self.value)
            except ValueError:
                raise ValidationError({"value": "Enter a number for this operator."}) from None
        elif (
            self.operator not in (self.Operator.IS_EMPTY, self.Operator.IS_NOT_EMPTY)
            and not self.value.strip()
        ):
            raise ValidationError({"value": "Enter a value to compare with."})


# Macros (docs/product.md#macros): what a macro's reply may say, each placeholder with
# what it stands for; filled by support.macros when the macro is applied to a ticket.
MACRO_PLACEHOLDERS = {
    "ticket_number": "the ticket's number",
    "ticket_subject": "the ticket's subject",
    "requester_name": "the requester's name (their email when the ticket has no name)",
    "requester_email": "the requester's email",
    "customer": "the customer's name",
    "assignee": "the name of whoever has the ticket once the macro is applied",
    "agent": "the name of whoever applies the macro",
}


class Macro(AuditedModel):
    """A canned answer support applies to a ticket in one step (``support.macros``): a
    reply with placeholders, field changes and at most one workflow of a fixed set.
    Checked when saved (``clean``): every placeholder is one the reply can fill."""

    class Assign(models.TextChoices):
        KEEP = "", "Leave as it is"
        ME = "me", "Whoever applies the macro"
        PERSON = "person", "The person below"
        NOBODY = "nobody", "Nobody (unassign)"

    class Workflow(models.TextChoices):
        NONE = "", "None"
        REISSUE_CODE = "reissue_code", "Reissue the code and send it"

    # What each workflow's reply may say besides MACRO_PLACEHOLDERS.
    WORKFLOW_PLACEHOLDERS = {
        Workflow.REISSUE_CODE: {"new_code": "the new redemption code"},
    }
    # The status each workflow leaves the ticket in.
    WORKFLOW_STATUS = {Workflow.REISSUE_CODE: Ticket.Status.SOLVED}

    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(
        "active", default=True, help_text="Only active macros are offered on tickets."
    )
    reply = models.TextField(
        blank=True,
        help_text="Emailed to the requester; empty: no reply. Placeholders: "
        + ", ".join(f"{{{name}}}" for name in MACRO_PLACEHOLDERS)
        + "; with the workflow also {new_code}. A literal brace is written {{ or }}.",
    )
    set_status = models.CharField(
        "status", max_length=10, choices=Ticket.Status, blank=True, help_text="Empty: unchanged."
    )
    set_priority = models.CharField(
        "priority",
        max_length=10,
        choices=Ticket.Priority,
        blank=True,
        help_text="Empty: unchanged.",
    )
    add_tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    remove_tags = models.ManyToManyField(Tag, blank=True, related_name="+")
    set_queue = models.CharField(
        "queue", max_length=50, blank=True, help_text="The team queue; empty: unchanged."
    )
    assign = models.CharField(max_length=10, choices=Assign, blank=True, default=Assign.KEEP)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        # Staff are deactivated, never deleted: a macro naming one keeps its record.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text='The person, when "assign" is "the person below".',
    )
    workflow = models.CharField(
        max_length=20,
        choices=Workflow,
        blank=True,
        default=Workflow.NONE,
        help_text="Reissue the code and send it: the ticket customer's entitlement assigned "
        "to the requester is revoked and reissued, the reply carries {new_code}, and the "
        "ticket is solved.",
    )

    history = audited_history(m2m_fields=[add_tags, remove_tags])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="macro_name_set"),
            models.CheckConstraint(
                condition=Q(assign__in=["", "me", "person", "nobody"]),
                name="macro_assign_valid",
            ),
            models.CheckConstraint(
                condition=Q(assign="person", assignee__isnull=False)
                | (~Q(assign="person") & Q(assignee__isnull=True)),
                name="macro_assignee_when_person",
            ),
            models.CheckConstraint(
                condition=Q(workflow__in=["", "reissue_code"]), name="macro_workflow_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def placeholders(self) -> dict[str, str]:
        """The placeholders its reply may use: the ticket's, and its workflow's."""
        return {**MACRO_PLACEHOLDERS, **self.WORKFLOW_PLACEHOLDERS.get(self.workflow, {})}

    def clean(self):
        from django.core.exceptions import ValidationError

        from kit.placeholders import placeholder_errors, placeholder_names

        errors: dict[str, list[str]] = {}
        workflow_only = {
            name: f"{{{name}}} is filled by the workflow “{self.Workflow(workflow).label}” "
            "only: choose that workflow, or take the placeholder out."
            for workflow, names in self.WORKFLOW_PLACEHOLDERS.items()
            for name in names
        }
        problems = placeholder_errors(
            self.reply or "", self.placeholders(), elsewhere=workflow_only
        )
        if problems:
            errors["reply"] = problems
        elif self.workflow:
            used = placeholder_names(self.reply or "")
            missing = [
                f"{{{name}}}"
                for name in self.WORKFLOW_PLACEHOLDERS.get(self.workflow, {})
                if name not in used
            ]
            if missing:
                errors["reply"] = [
                    f"“{self.get_workflow_display()}” sends the new code in the reply: "
                    f"put {', '.join(missing)} in it."
                ]
        ends_in = self.WORKFLOW_STATUS.get(self.workflow)
        if ends_in and self.set_status and self.set_status != ends_in:
            errors["set_status"] = [
                f"“{self.get_workflow_display()}” leaves the ticket "
                f"{Ticket.Status(ends_in).label.lower()}: leave the status empty or choose "
                f"{Ticket.Status(ends_in).label}."
            ]
        if self.assign == self.Assign.PERSON and self.assignee_id is None:
            errors["assignee"] = ["Choose the person to assign the ticket to."]
        elif self.assign != self.Assign.PERSON and self.assignee_id is not None:
            errors["assignee"] = ['Name a person only when "assign" is "the person below".']
        if errors:
            raise ValidationError(errors)
