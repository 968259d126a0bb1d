"""Onboarding: checklist templates (data, edited in the admin) and the checklists
generated from them when a contract becomes active (docs/product.md#onboarding)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from audit.models import AuditedModel, audited_history
from customers.models import Contract
from kit import placeholders

# What a template item's title and text may say about the customer, and what each means.
PLACEHOLDERS = {
    "customer": "the customer's name",
    "tenant_id": "the customer's tenant id",
    "crm_id": "the customer's CRM id",
    "plan": "the contract's plan",
    "seats": "the contract's seat count",
    "integrations": "the integrations in the contract's scope",
    "start_date": "the contract's start date",
    "primary_contact": "the primary contact's name and email",
    "technical_contact": "the technical contact's name and email",
    "account_manager": "the account manager's name",
}


def placeholder_errors(text: str) -> list[str]:
    """What is wrong with the ``{placeholders}`` of ``text``, as sentences (none: fine);
    ``kit.placeholders`` reads them as rendering does."""
    return placeholders.placeholder_errors(text, PLACEHOLDERS)


class Role(models.TextChoices):
    ACCOUNT_MANAGER = "account_manager", "Account manager"
    SUPPORT = "support", "Support"
    OPS = "ops", "Ops"


class ChecklistTemplate(AuditedModel):
    """A set of items; every active template whose plan matches contributes its items."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    active = models.BooleanField(
        default=True, help_text="Inactive templates generate nothing (checklists keep their tasks)."
    )
    plan = models.CharField(
        max_length=20,
        choices=Contract.Plan,
        blank=True,
        help_text="Only for contracts of this plan; empty for every plan.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="checklisttemplate_name_set"),
            models.CheckConstraint(
                condition=Q(plan__in=["", "starter", "growth", "enterprise"]),
                name="checklisttemplate_plan_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TemplateItem(AuditedModel):
    """One task to be: when it applies, whose job it is, when it is due, what it says."""

    template = models.ForeignKey(ChecklistTemplate, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0, help_text="Order within the template.")
    title = models.CharField(max_length=200)
    text = models.TextField(
        blank=True,
        help_text="Placeholders: " + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS) + ".",
    )
    role = models.CharField("responsible", max_length=20, choices=Role)
    due_offset_days = models.IntegerField(
        "due (days after start)", default=0, help_text="Days after the contract's start date."
    )
    # Conditions on the contract's scope; empty ones always hold.
    plan = models.CharField(
        max_length=20, choices=Contract.Plan, blank=True, help_text="Only for this plan."
    )
    integration = models.CharField(
        max_length=30,
        choices=Contract.Integration,
        blank=True,
        help_text="Only when this integration is in the contract's scope.",
    )
    seats_above = models.PositiveIntegerField(
        null=True, blank=True, help_text="Only when the contract has more seats than this."
    )

    history = audited_history()

    class Meta:
        ordering = ["template", "position", "pk"]
        constraints = [
            models.CheckConstraint(condition=~Q(title=""), name="templateitem_title_set"),
            models.CheckConstraint(
                condition=Q(role__in=["account_manager", "support", "ops"]),
                name="templateitem_role_valid",
            ),
            models.CheckConstraint(
                condition=Q(plan__in=["", "starter", "growth", "enterprise"]),
                name="templateitem_plan_valid",
            ),
            models.CheckConstraint(
                condition=Q(due_offset_days__gte=-365) & Q(due_offset_days__lte=365),
                name="templateitem_due_offset_within_a_year",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self):
        super().clean()
        errors = {}
        for field in ("title", "text"):
            problems = placeholder_errors(getattr(self, field) or "")
            if problems:
                errors[field] = problems
        if errors:
            raise ValidationError(errors)

    def applies_to(self, contract: Contract) -> bool:
        """Whether this item's conditions hold for ``contract``'s scope (its template's
        plan included: pass items of active templates only)."""
        return (
            (not self.template.plan or self.template.plan == contract.plan)
            and (not self.plan or self.plan == contract.plan)
            and (not self.integration or self.integration in (contract.integrations or []))
            and (self.seats_above is None or contract.seats > self.seats_above)
        )

    def conditions(self) -> str:
        parts = []
        if self.plan:
            parts.append(f"plan {self.get_plan_display()}")
        if self.integration:
            parts.append(self.get_integration_display())
        if self.seats_above is not None:
            parts.append(f"more than {self.seats_above} seats")
        return ", ".join(parts) or "always"


class Checklist(AuditedModel):
    """A contract's onboarding: generated once, when the contract becomes active."""

    contract = models.OneToOneField(Contract, on_delete=models.PROTECT, related_name="checklist")
    # Denormalised from the contract: the customer page and the digest read by customer.
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="checklists"
    )
    activated_at = models.DateTimeField(
        default=timezone.now, help_text="When the contract became active: the clock starts."
    )
    completed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the last task was done; empty while tasks are open.",
    )

    history = audited_history()

    class Meta:
        ordering = ["-activated_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(completed_at__isnull=True)
                | Q(completed_at__gte=models.F("activated_at")),
                name="checklist_completed_after_activation",
            ),
        ]
        indexes = [
            # Overview: median time to onboard over checklists completed recently.
            models.Index(
                fields=["completed_at"],
                condition=Q(completed_at__isnull=False),
                name="checklist_completed",
            ),
            # Overview: checklists in progress, newest first.
            models.Index(
                fields=["-activated_at"],
                condition=Q(completed_at__isnull=True),
                name="checklist_in_progress",
            ),
        ]

    def __str__(self) -> str:
        return f"Onboarding of {self.contract}"

    @property
    def time_to_onboard(self):
        return self.completed_at - self.activated_at if self.completed_at else None


class ChecklistTask(AuditedModel):
    class State(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"
        NOT_APPLICABLE = "not_applicable", "Not applicable"

    checklist = models.ForeignKey(Checklist, on_delete=models.CASCADE, related_name="tasks")
    template_item = models.ForeignKey(
        TemplateItem,
        # A task keeps its text and history when its template item is deleted.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
    )
    position = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    role = models.CharField("responsible", max_length=20, choices=Role)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="onboarding_tasks",
    )
    due_date = models.DateField()
    state = models.CharField(max_length=20, choices=State, default=State.OPEN)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    done_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["checklist", "due_date", "position", "pk"]
        constraints = [
            # Generation and sync are idempotent: one task per template item per checklist.
            models.UniqueConstraint(
                fields=["checklist", "template_item"], name="checklisttask_one_per_item"
            ),
            models.CheckConstraint(
                condition=Q(state__in=["open", "done", "not_applicable"]),
                name="checklisttask_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["account_manager", "support", "ops"]),
                name="checklisttask_role_valid",
            ),
            models.CheckConstraint(
                condition=Q(state="done", done_at__isnull=False)
                | (~Q(state="done") & Q(done_at__isnull=True, done_by__isnull=True)),
                name="checklisttask_done_has_date",
            ),
        ]
        indexes = [
            # "My onboarding tasks" and the digest: a person's open tasks by due date.
            models.Index(
                fields=["owner", "due_date"], condition=Q(state="open"), name="checklisttask_open"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def is_overdue(self, today) -> bool:
        return self.state == self.State.OPEN and self.due_date < today
