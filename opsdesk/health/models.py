"""Health signals (docs/product.md#health-signals): each flag of a customer as owned,
deduplicated work, and the daily sweep that keeps them.

Imported by ``opsdesk.models``: models of the opsdesk app. Written only by
``opsdesk.health.signals`` (the sweep, acknowledge, snooze).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from audit.models import AuditedModel, audited_history


class HealthSignal(AuditedModel):
    """One flag of one customer, from the day it first appeared until the day it cleared.

    At most one signal per (customer, kind) is not resolved; a flag that clears and comes
    back later opens a new signal. ``reason`` and ``value`` are the latest figures
    (``value``: the one number of the flag, ``opsdesk.health.flags.Flag.value``).
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Being handled"
        SNOOZED = "snoozed", "Snoozed"
        RESOLVED = "resolved", "Resolved"

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="health_signals"
    )
    kind = models.CharField(max_length=30)
    label = models.CharField(max_length=60)
    state = models.CharField(max_length=15, choices=State, default=State.OPEN)
    opened_on = models.DateField(help_text="The digest date the flag first appeared.")
    opened_reason = models.CharField(max_length=500)
    reason = models.CharField("latest reason", max_length=500)
    value = models.FloatField(default=0.0)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledge_note = models.CharField(max_length=300, blank=True)
    snoozed_until = models.DateField(null=True, blank=True)
    snooze_reason = models.CharField(max_length=300, blank=True)
    snoozed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The flag's value when it was snoozed: "materially worse" is measured against it.
    snoozed_value = models.FloatField(null=True, blank=True)
    # Why the latest snooze ended before its date ("worse: ..."), or "" .
    woke_reason = models.CharField(max_length=500, blank=True)
    resolved_on = models.DateField(null=True, blank=True)
    resolved_reason = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        ordering = ["customer", "opened_on", "kind"]
        # ``change_healthsignal`` acknowledges and snoozes the signals of the customers
        # one may edit; this, any customer's (ops leads).
        permissions = [
            ("handle_any_healthsignal", "Can acknowledge and snooze any customer's signals"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "kind"],
                condition=~Q(state="resolved"),
                name="healthsignal_one_open_per_customer_and_kind",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["open", "acknowledged", "snoozed", "resolved"]),
                name="healthsignal_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(state="resolved", resolved_on__isnull=False)
                | (~Q(state="resolved") & Q(resolved_on__isnull=True)),
                name="healthsignal_resolved_has_date",
            ),
            models.CheckConstraint(
                condition=~Q(state="snoozed") | Q(snoozed_until__isnull=False),
                name="healthsignal_snoozed_has_date",
            ),
        ]
        indexes = [
            # The open signals of a set of customers (the digest, pages, the sweep).
            models.Index(
                fields=["customer", "kind"],
                condition=~Q(state="resolved"),
                name="healthsignal_open",
            ),
            # What resolved on a date (the digest's "Resolved since yesterday").
            models.Index(
                fields=["resolved_on", "customer"],
                condition=Q(state="resolved"),
                name="healthsignal_resolved_on",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label}: {self.customer}"

    @property
    def is_open(self) -> bool:
        return self.state != self.State.RESOLVED


class HealthSweep(AuditedModel):
    """The signals' sweep of one digest date, claimed before it runs so that two
    schedulers, a retry or the digest's own call run it once (the digest's claim pattern).
    A sweep of a date older than the newest finished one changes nothing."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    date = models.DateField(unique=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.RUNNING)
    claimed_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    customers = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    woke = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    history = audited_history()

    class Meta:
        ordering = ["-date"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["running", "finished", "failed"]),
                name="healthsweep_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"Health sweep {self.date}"
