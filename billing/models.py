"""Billing: invoices imported from the billing system (``contracts/invoices-csv.md``)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from audit.models import AuditedModel, audited_history
from customers.models import CURRENCY_CODE, Customer


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
        ]

    def __str__(self) -> str:
        return self.number
