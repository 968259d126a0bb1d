"""Records of the work that reads across apps: the daily digest deliveries, staff
notifications (defined in opsdesk.notifications.models), health signals
(opsdesk.health.models) and saved views (opsdesk.saved_views.models)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from audit.models import AuditedModel, audited_history


class DigestDelivery(AuditedModel):
    """One digest email for one recipient and one date, claimed before it is sent: a
    manager's daily digest, or a team's weekly roll-up (``kind``).

    The unique (date, recipient) key makes a second run, a retry after a crash or a
    second scheduler find the claim instead of sending again.
    """

    class Kind(models.TextChoices):
        DIGEST = "digest", "Daily digest"
        ROLLUP = "rollup", "Team roll-up"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=10, choices=Kind, default=Kind.DIGEST)
    digest_date = models.DateField("date")
    # "user:<id>" for an account manager, "fallback" for customers without one; a
    # roll-up's start with "rollup:" (opsdesk.health.rollup).
    recipient_key = models.CharField(max_length=50)
    # A roll-up's team, named as it was when claimed ("" for a digest).
    team = models.CharField(max_length=150, blank=True)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="digest_deliveries",
    )
    email = models.EmailField()
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    subject = models.CharField(max_length=300, blank=True)
    customer_count = models.PositiveIntegerField(default=0)
    attention_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        verbose_name_plural = "digest deliveries"
        ordering = ["-digest_date", "email"]
        # The operations scorecard (opsdesk.scorecard) has no model of its own; its
        # permission lives with the project's first model.
        permissions = [("view_scorecard", "Can view the operations scorecard")]
        constraints = [
            models.UniqueConstraint(
                fields=["digest_date", "recipient_key"], name="digest_one_per_recipient_and_date"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "sending", "sent", "failed"]),
                name="digest_status_valid",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="digest_sent_has_time"
            ),
            # The kind and the key's prefix say the same: a send (digest_send,
            # rollup_send) finds the row by its key, the log tells them apart by kind.
            models.CheckConstraint(
                condition=Q(kind="rollup", recipient_key__startswith="rollup:")
                | (Q(kind="digest") & ~Q(recipient_key__startswith="rollup:")),
                name="digest_kind_matches_key",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.ROLLUP:
            team = self.team or "a team"
            return f"Team roll-up, week of {self.digest_date} for {team} ({self.email})"
        return f"Digest {self.digest_date} for {self.email}"


# Health signals and their daily sweep, defined with customer health.
from opsdesk.health.models import HealthSignal, HealthSweep  # noqa: E402

# Staff notifications' models, defined with their feature; imported here, the app's models.
from opsdesk.notifications.models import (  # noqa: E402
    ChatPost,
    Notification,
    NotificationPreference,
)

# Saved views of the queue and the inbox, defined with their feature.
from opsdesk.saved_views.models import SavedView  # noqa: E402

__all__ = [
    "ChatPost",
    "DigestDelivery",
    "HealthSignal",
    "HealthSweep",
    "Notification",
    "NotificationPreference",
    "SavedView",
]
