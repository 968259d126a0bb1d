"""Billing: invoices imported from the billing system (``docs/contracts/invoices-csv.md``)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditedModel, audited_history
from customers.models import CURRENCY_CODE, Customer, trigram_index


class Invoice(AuditedModel):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    external_id = models.CharField("invoice id", max_length=100, unique=True)
    tenant_id = models.CharField(max_length=100)
    customer = models.ForeignKey(
        Customer,
        # Invoices are financial records.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="invoices",
    )
    number = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status)
    currency = models.CharField(max_length=3)
    amount_due = models.DecimalField(max_digits=12, decimal_places=2)
    amount_paid = models.DecimalField(max_digits=12, decimal_places=2)
    period_start = models.DateField()
    period_end = models.DateField()
    issued_at = models.DateField()
    due_at = models.DateField()
    imported_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        ordering = ["-period_start", "number"]
        constraints = [
            models.CheckConstraint(condition=CURRENCY_CODE, name="invoice_currency_iso"),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")), name="invoice_period_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "open", "paid", "void", "uncollectible"]),
                name="invoice_status_valid",
            ),
        ]
        indexes = [
            # Reconciliation and the billing tab: a customer's invoices by period.
            models.Index(fields=["customer", "period_start"], name="invoice_customer_period"),
            # The global search (opsdesk.search): an invoice number, whole or part, any case.
            trigram_index("number", "invoice_number_trgm"),
        ]

    def __str__(self) -> str:
        return self.number


class ReconciliationRun(AuditedModel):
    """One reconciliation of a month (docs/product.md#billing-reconciliation), for every
    customer or, for a "re-check now", for one. Its findings are ``support.Case`` rows
    of the billing kinds, with ``period`` set to the month."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    month = models.DateField(help_text="The first day of the month reconciled.")
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reconciliation_runs",
        help_text="Set when one customer was re-checked; empty for the whole month.",
    )
    status = models.CharField(max_length=20, choices=Status, default=Status.RUNNING)
    stage = models.CharField(max_length=100, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    started_by = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    customers_checked = models.PositiveIntegerField(default=0)
    findings = models.JSONField(
        default=dict, blank=True, help_text="Problems found, per finding kind."
    )
    opened = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    history = audited_history()

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["running", "succeeded", "failed"]),
                name="reconciliationrun_status_valid",
            ),
            # Two runs of the same month never write at once: the second cannot start.
            models.UniqueConstraint(
                fields=["month"],
                condition=Q(status="running"),
                name="reconciliationrun_one_running_per_month",
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="reconciliationrun_progress_percent"
            ),
        ]

    def __str__(self) -> str:
        scope = f" for {self.customer}" if self.customer_id else ""
        return f"Reconciliation {self.month:%Y-%m}{scope} ({self.get_status_display().lower()})"

    @property
    def duration(self):
        return (self.finished_at or timezone.now()) - self.started_at


class InvoiceImport(AuditedModel):
    """One import of the billing system's invoice export (``billing.imports``), uploaded or
    run as ``import_invoices``: when the file came, who brought it and what became of its
    rows. These are the billing system's deliveries as the freshness panel reads them
    (docs/product.md#freshness)."""

    class Status(models.TextChoices):
        SUCCEEDED = "succeeded", "Succeeded"
        # Something in the file was not imported: the whole file (not CSV, a column
        # missing, not UTF-8) or some of its rows (their lines are in ``error``).
        FAILED = "failed", "Failed"

    received_at = models.DateTimeField(
        default=timezone.now, editable=False, help_text="When the import started."
    )
    file_name = models.CharField(max_length=255, blank=True)
    started_by = models.CharField(
        max_length=200, blank=True, help_text="Who imported it (the history's actor)."
    )
    status = models.CharField(max_length=20, choices=Status)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0, help_text="Rows rejected.")
    error = models.TextField(blank=True, help_text="Why the file or its rows were refused.")

    history = audited_history()

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["succeeded", "failed"]),
                name="invoiceimport_status_valid",
            ),
        ]
        indexes = [
            # The freshness panel (opsdesk.freshness.selectors): the latest imports, those
            # of the last day and week, the latest success and the failures since it.
            models.Index(fields=["received_at"], name="invoiceimport_received"),
        ]

    def __str__(self) -> str:
        return (
            f"Import of {self.file_name or 'an invoice file'} ({self.get_status_display().lower()})"
        )
