"""Staff notifications (docs/product.md#staff-notifications): what each person was told,
how each chose to be told, and what was posted to the teams' chat webhooks.

Imported by ``opsdesk.models``: these are models of the opsdesk app.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from audit.models import AuditedModel, audited_history
from kit.notify import KINDS

KIND_CHOICES = list(KINDS)


class Notification(AuditedModel):
    """One notice for one person, stored once (unique recipient and dedupe key), then
    emailed at once, in the person's next roll-up, or not at all, as their preference for
    its kind said when it arrived."""

    class Status(models.TextChoices):
        PENDING = "pending", "To be emailed"
        ROLLUP = "rollup", "Waiting for the roll-up"
        SENT = "sent", "Emailed"
        FAILED = "failed", "Not emailed: failed"
        OFF = "off", "Not emailed: turned off"

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    subject = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    # The record's path in opsdesk (/admin/support/ticket/12/change/).
    url = models.CharField(max_length=500, blank=True)
    dedupe_key = models.CharField(max_length=200)
    # The group the person was told as a member of, when nobody in particular was.
    team = models.CharField(max_length=150, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    # A roll-up's time: when the person's waiting notifications go out together.
    due_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recipient", "dedupe_key"], name="notification_once_per_recipient"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "rollup", "sent", "failed", "off"]),
                name="notification_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="notification_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="rollup") | Q(due_at__isnull=False),
                name="notification_rollup_has_time",
            ),
        ]
        indexes = [
            # My notifications: a person's, newest first.
            models.Index(fields=["recipient", "-created_at"], name="notification_recipient"),
            # The roll-up (rollups_due) and the sweep (notifications_unsent): the rows
            # still to be emailed.
            models.Index(
                fields=["status", "due_at"],
                condition=Q(status__in=["pending", "rollup"]),
                name="notification_to_email",
            ),
        ]

    def __str__(self) -> str:
        return self.subject


class NotificationPreference(AuditedModel):
    """How one person is emailed about each kind of notice; without a row, the defaults
    (every kind at once). The roll-up interval is the person's, for all kinds rolled up."""

    class Mode(models.TextChoices):
        IMMEDIATELY = "immediately", "Email me at once"
        ROLLUP = "rollup", "In a roll-up email"
        OFF = "off", "Do not email me"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preference"
    )
    # One field per kit.notify kind (the defaults: docs/product.md#staff-notifications).
    ticket_assigned = models.CharField(
        "A ticket is assigned to me", max_length=12, choices=Mode, default=Mode.IMMEDIATELY
    )
    customer_replied = models.CharField(
        "A customer replies on my ticket", max_length=12, choices=Mode, default=Mode.IMMEDIATELY
    )
    sla_warning = models.CharField(
        "A ticket of mine is about to miss its target",
        max_length=12,
        choices=Mode,
        default=Mode.IMMEDIATELY,
    )
    sla_breach = models.CharField(
        "A ticket of mine missed its target",
        max_length=12,
        choices=Mode,
        default=Mode.IMMEDIATELY,
    )
    case_assigned = models.CharField(
        "A case is assigned to me", max_length=12, choices=Mode, default=Mode.IMMEDIATELY
    )
    rollup_minutes = models.PositiveSmallIntegerField(
        "Roll-up every (minutes)",
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(1440)],
        help_text="Empty: the default (OPSDESK_NOTIFY_ROLLUP_MINUTES).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(rollup_minutes__isnull=True)
                | Q(rollup_minutes__gte=5, rollup_minutes__lte=1440),
                name="notificationpreference_rollup_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Notification preferences of {self.user}"

    def mode_for(self, kind: str) -> str:
        return getattr(self, kind)


class ChatPost(AuditedModel):
    """One notice posted to one chat webhook (``OPSDESK_SLACK_WEBHOOK_URL`` or a team's of
    ``OPSDESK_SLACK_WEBHOOK_URLS``), once (unique target and dedupe key). The URL is read
    from the settings when it is posted and never stored: it is a secret."""

    class Status(models.TextChoices):
        PENDING = "pending", "To be posted"
        SENT = "sent", "Posted"
        FAILED = "failed", "Not posted: failed"

    # "" for OPSDESK_SLACK_WEBHOOK_URL, else the team (group) whose webhook it is.
    target = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    dedupe_key = models.CharField(max_length=200)
    text = models.TextField()
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["target", "dedupe_key"], name="chatpost_once_per_target"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sent", "failed"]), name="chatpost_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="chatpost_sent_has_time",
            ),
        ]
        indexes = [
            # The sweep (chat_posts_unsent): the posts still to be made.
            models.Index(
                fields=["created_at"], condition=Q(status="pending"), name="chatpost_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"Chat post {self.dedupe_key} to {self.target or 'the default webhook'}"
