"""The core: who our customers are, what they bought and how they use it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Lower, Replace, Upper
from django.utils import timezone

from audit.models import AuditedModel, audited_history
from kit.people import actor_name
from kit.text import count_of

CURRENCY_CODE = Q(currency__regex=r"^[A-Z]{3}$")


def bare_code(field: str) -> Replace:
    """A redemption code as ``customers.codes.redemption_code_bare`` writes it: upper
    case, without its dashes."""
    return Replace(Upper(field), Value("-"), Value(""))


def trigram_index(field: str, name: str) -> GinIndex:
    """A pg_trgm index serving the admin's search (``field__icontains``, which PostgreSQL
    runs as ``UPPER(field) LIKE UPPER('%term%')``): on the same expression, so the search
    reads the index instead of the whole table."""
    return GinIndex(OpClass(Upper(field), name="gin_trgm_ops"), name=name)


class Customer(AuditedModel):
    class Status(models.TextChoices):
        ONBOARDING = "onboarding", "Onboarding"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CHURNED = "churned", "Churned"

    external_id = models.CharField(
        "tenant id",
        max_length=100,
        blank=True,
        # Empty only for an account from the CRM whose product tenant does not exist yet.
        help_text="The product's tenant id.",
    )
    name = models.CharField(max_length=200)
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        # A departing manager must not take their customers' records with them.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_customers",
    )
    crm_id = models.CharField("CRM id", max_length=100, blank=True)
    status = models.CharField(max_length=20, choices=Status, default=Status.ONBOARDING)
    crm_updated_at = models.DateTimeField(
        "CRM changed at",
        null=True,
        blank=True,
        help_text="When the CRM last changed the account, as opsdesk last took it; empty until "
        "the CRM sends it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("migrate_account", "Can migrate an account's contacts, entitlements and tickets"),
            (
                "link_crm_account",
                "Can link a CRM account to a customer, or create it, for a waiting CRM contract",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["crm_id"], condition=~Q(crm_id=""), name="customer_crm_id_unique"
            ),
            # Also serves the product's events, which find their customer by tenant id.
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~Q(external_id=""),
                name="customer_external_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["onboarding", "active", "paused", "churned"]),
                name="customer_status_valid",
            ),
            # Known by the product's tenant id, or (before its tenant exists) by the CRM's.
            models.CheckConstraint(
                condition=~Q(external_id="") | ~Q(crm_id=""), name="customer_has_an_id"
            ),
            models.CheckConstraint(
                condition=Q(crm_updated_at__isnull=True) | ~Q(crm_id=""),
                name="customer_crm_taken_has_crm_id",
            ),
        ]
        indexes = [
            # Admin search and ordering by name (case-insensitive `icontains`).
            models.Index(Upper("name"), name="customer_name_upper"),
            trigram_index("name", "customer_name_trgm"),
            trigram_index("external_id", "customer_external_id_trgm"),
            trigram_index("crm_id", "customer_crm_id_trgm"),
        ]

    def __str__(self) -> str:
        return self.name


class Contact(AuditedModel):
    class Role(models.TextChoices):
        ADMIN = "admin", "Admin"
        BILLING = "billing", "Billing"
        TECHNICAL = "technical", "Technical"
        EXECUTIVE = "executive", "Executive"
        USER = "user", "User"

    customer = models.ForeignKey(
        Customer,
        # Contacts mean nothing without their customer; an account migration moves them first.
        on_delete=models.CASCADE,
        related_name="contacts",
    )
    name = models.CharField(max_length=200)
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role, default=Role.USER)
    is_primary = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    history = audited_history()

    class Meta:
        ordering = ["customer", "-is_primary", "name"]
        constraints = [
            models.UniqueConstraint(
                "customer", Lower("email"), name="contact_email_unique_per_customer"
            ),
            models.UniqueConstraint(
                fields=["customer"], condition=Q(is_primary=True), name="contact_one_primary"
            ),
        ]
        indexes = [
            # Search by email across customers (support looks up the requester).
            models.Index(Lower("email"), name="contact_email_lower"),
            trigram_index("name", "contact_name_trgm"),
            trigram_index("email", "contact_email_trgm"),
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Contract(AuditedModel):
    class Plan(models.TextChoices):
        STARTER = "starter", "Starter"
        GROWTH = "growth", "Growth"
        ENTERPRISE = "enterprise", "Enterprise"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"
        CANCELLED = "cancelled", "Cancelled"

    class Integration(models.TextChoices):
        SSO = "sso", "Single sign-on"
        CRM_SYNC = "crm_sync", "CRM sync"
        DATA_IMPORT = "data_import", "Data import"
        SLACK = "slack", "Slack"
        API = "api", "API access"
        WAREHOUSE = "warehouse", "Data warehouse export"

    customer = models.ForeignKey(
        Customer,
        # A contract is a financial record: the customer cannot be deleted while it exists.
        on_delete=models.PROTECT,
        related_name="contracts",
    )
    plan = models.CharField(max_length=20, choices=Plan)
    seats = models.PositiveIntegerField()
    monthly_fee = models.DecimalField(max_digits=12, decimal_places=2)
    price_per_extra_seat = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Empty for open-ended contracts.")
    status = models.CharField(max_length=20, choices=Status, default=Status.DRAFT)
    integrations = ArrayField(
        models.CharField(max_length=30, choices=Integration),
        default=list,
        blank=True,
        help_text="Integrations in the contract's scope.",
    )
    crm_id = models.CharField("CRM id", max_length=100, blank=True)
    crm_updated_at = models.DateTimeField(
        "CRM changed at",
        null=True,
        blank=True,
        help_text="When the CRM last changed the contract, as opsdesk last took it; empty "
        "until the CRM sends it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        ordering = ["-start_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["crm_id"], condition=~Q(crm_id=""), name="contract_crm_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(crm_updated_at__isnull=True) | ~Q(crm_id=""),
                name="contract_crm_taken_has_crm_id",
            ),
            models.CheckConstraint(
                condition=Q(monthly_fee__gte=0), name="contract_fee_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(price_per_extra_seat__gte=0), name="contract_extra_seat_not_negative"
            ),
            models.CheckConstraint(condition=CURRENCY_CODE, name="contract_currency_iso"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="contract_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(plan__in=["starter", "growth", "enterprise"]),
                name="contract_plan_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "active", "ended", "cancelled"]),
                name="contract_status_valid",
            ),
        ]
        indexes = [
            # Renewal-soon and reconciliation: active contracts by end date.
            models.Index(fields=["status", "end_date"], name="contract_status_end"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} · {self.get_plan_display()} · {count_of(self.seats, 'seat')}"


class Product(AuditedModel):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=20, choices=Status, default=Status.ACTIVE)
    term_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="How long an entitlement lasts; empty for perpetual."
    )

    history = audited_history()

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=~Q(sku=""), name="product_sku_set"),
            models.CheckConstraint(
                condition=Q(status__in=["active", "retired"]), name="product_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Order(AuditedModel):
    class Fulfilment(models.TextChoices):
        PENDING = "pending", "Pending"
        FULFILLED = "fulfilled", "Fulfilled"
        FAILED = "failed", "Failed"
        # Not fulfilled: the customer was refunded instead (a failed-fulfilment case's
        # resolution).
        REFUNDED = "refunded", "Refunded"

    external_id = models.CharField("order id", max_length=100, unique=True)
    # Unknown tenants and SKUs are recorded as sent, so an order is never lost.
    tenant_id = models.CharField(max_length=100)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    sku = models.CharField("SKU", max_length=64)
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, null=True, blank=True, related_name="orders"
    )
    quantity = models.PositiveIntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    paid_at = models.DateTimeField()
    fulfilment = models.CharField(max_length=20, choices=Fulfilment, default=Fulfilment.PENDING)
    refunded_at = models.DateTimeField(null=True, blank=True)
    refund_reference = models.CharField(
        max_length=100, blank=True, help_text="The billing system's refund id or credit note."
    )
    created_at = models.DateTimeField(
        default=timezone.now,
        editable=False,
        help_text="When it happened; given by the source (webhook, import) when known.",
    )

    history = audited_history()

    class Meta:
        ordering = ["-paid_at"]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
            models.CheckConstraint(condition=CURRENCY_CODE, name="order_currency_iso"),
            models.CheckConstraint(
                condition=Q(fulfilment__in=["pending", "fulfilled", "failed", "refunded"]),
                name="order_fulfilment_valid",
            ),
            models.CheckConstraint(
                condition=~Q(fulfilment="refunded") | Q(refunded_at__isnull=False),
                name="order_refunded_has_date",
            ),
        ]
        indexes = [
            # The global search (opsdesk.search): an order id, whole or part, any case.
            trigram_index("external_id", "order_external_id_trgm"),
        ]

    def __str__(self) -> str:
        return self.external_id


class Entitlement(AuditedModel):
    class State(models.TextChoices):
        ISSUED = "issued", "Issued"
        ASSIGNED = "assigned", "Assigned"
        REDEEMED = "redeemed", "Redeemed"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    order = models.ForeignKey(
        Order,
        # An entitlement is evidence of what an order delivered.
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entitlements",
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="entitlements")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="entitlements")
    code = models.CharField(max_length=32, unique=True, help_text="Redemption code.")
    state = models.CharField(max_length=20, choices=State, default=State.ISSUED)
    assignee_email = models.EmailField(blank=True)
    redeemed_by_email = models.EmailField(blank=True)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True)
    issued_at = models.DateTimeField()
    assigned_at = models.DateTimeField(null=True, blank=True)
    redeemed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.TextField(blank=True)

    history = audited_history()

    class Meta:
        ordering = ["-issued_at"]
        permissions = [
            ("transfer_entitlement", "Can transfer entitlements to another customer"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["issued", "assigned", "redeemed", "revoked", "expired"]),
                name="entitlement_state_valid",
            ),
            models.CheckConstraint(
                condition=~Q(state="assigned") | ~Q(assignee_email=""),
                name="entitlement_assigned_has_assignee",
            ),
            models.CheckConstraint(
                condition=~Q(state="redeemed")
                | (Q(redeemed_at__isnull=False) & ~Q(redeemed_by_email="")),
                name="entitlement_redeemed_has_redemption",
            ),
            models.CheckConstraint(
                condition=~Q(state="revoked")
                | (Q(revoked_at__isnull=False) & ~Q(revoke_reason="")),
                name="entitlement_revoked_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=models.F("valid_from")),
                name="entitlement_valid_range",
            ),
        ]
        indexes = [
            # Daily expiry sweep: live entitlements past their end date.
            models.Index(fields=["state", "valid_until"], name="entitlement_state_until"),
            # Support looks up who holds a seat by email.
            models.Index(Lower("assignee_email"), name="entitlement_assignee_lower"),
            trigram_index("code", "entitlement_code_trgm"),
            trigram_index("assignee_email", "entitlement_assignee_trgm"),
            trigram_index("redeemed_by_email", "entitlement_redeemed_by_trgm"),
            models.Index(Lower("redeemed_by_email"), name="entitlement_redeemed_by_lower"),
            # The global search (opsdesk.search): a code, whole or part, typed with or
            # without its dashes (customers.codes.redemption_code_bare).
            GinIndex(
                OpClass(bare_code("code"), name="gin_trgm_ops"), name="entitlement_code_bare_trgm"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class UsageDaily(AuditedModel):
    """One tenant's usage for one UTC day, as reported by the product (`usage.daily`)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="usage")
    date = models.DateField()
    active_users_1d = models.PositiveIntegerField()
    active_users_7d = models.PositiveIntegerField()
    last_login_at = models.DateTimeField(null=True, blank=True)
    requests = models.PositiveBigIntegerField()
    errors = models.PositiveBigIntegerField()
    reported_at = models.DateTimeField(auto_now=True)

    history = audited_history()

    class Meta:
        verbose_name = "daily usage"
        verbose_name_plural = "daily usage"
        ordering = ["-date"]
        constraints = [
            # Also serves "this customer's usage, newest first" (customer page, digest).
            models.UniqueConstraint(fields=["customer", "date"], name="usage_one_row_per_day"),
            models.CheckConstraint(
                condition=Q(errors__lte=models.F("requests")), name="usage_errors_within_requests"
            ),
            # Weekly actives include the day's actives.
            models.CheckConstraint(
                condition=Q(active_users_7d__gte=models.F("active_users_1d")),
                name="usage_weekly_covers_daily",
            ),
        ]
        indexes = [
            # Health computation and digests read all customers' rows of one date.
            models.Index(fields=["date"], name="usage_date"),
            # The digest's "last login": a customer's latest reported login, at once.
            models.Index(
                fields=["customer", "-last_login_at"],
                condition=Q(last_login_at__isnull=False),
                name="usage_last_login",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} · {self.date}"

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


class CrmImport(AuditedModel):
    """One import of the CRM's accounts and contracts from CSV exports
    (``customers.crm_import``, docs/contracts/crm.md#pull): uploaded on its page (the files
    kept here until the worker has read them) or run as ``import_crm``. What became of each
    file's rows, and the rows rejected or taken with a warning, by line."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        # Every row read; some were rejected (their lines are in ``notes``), the others taken.
        ROWS_REJECTED = "rows_rejected", "Rows rejected"
        # Stopped: a file refused as a whole (nothing taken) or an error (``error``).
        FAILED = "failed", "Failed"

    accounts_file_name = models.CharField(max_length=255)
    contracts_file_name = models.CharField(max_length=255, blank=True)
    # The uploaded files, as received, until the worker has read them; the command reads
    # its files from disk. Not in the history: what their rows did is.
    accounts_csv = models.BinaryField(editable=False, blank=True, default=b"")
    contracts_csv = models.BinaryField(editable=False, blank=True, default=b"")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who uploaded the files; empty for import_crm.",
    )
    started_by = models.CharField(
        max_length=200, blank=True, help_text="Who the history names (the upload's person)."
    )
    status = models.CharField(max_length=20, choices=Status, default=Status.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="Percent done.")
    attempts = models.PositiveSmallIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Saved at every step: how the sweep tells a run whose worker died.
    updated_at = models.DateTimeField(auto_now=True)
    counts = models.JSONField(
        default=dict, blank=True, help_text="Per file: rows created, changed, unchanged, stale."
    )
    rejected = models.PositiveIntegerField(default=0, help_text="Rows rejected.")
    warnings = models.PositiveIntegerField(default=0, help_text="Rows taken with a warning.")
    notes = models.JSONField(
        default=list, blank=True, help_text="The rows rejected or taken with a warning."
    )
    error = models.TextField(blank=True, help_text="Why the import stopped.")

    history = audited_history(excluded_fields=["accounts_csv", "contracts_csv"])

    class Meta:
        verbose_name = "CRM import"
        ordering = ["-received_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["queued", "running", "succeeded", "rows_rejected", "failed"]
                ),
                name="crmimport_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="crmimport_progress_percent"
            ),
        ]
        indexes = [
            # The sweep: imports queued or running (a handful among all imports ever).
            models.Index(
                fields=["status"],
                condition=Q(status__in=["queued", "running"]),
                name="crmimport_unfinished",
            ),
        ]

    @property
    def started_by_name(self) -> str:
        """Who started it as pages name people: the uploader by name, else the command."""
        return actor_name(self.started_by, self.requested_by)

    def __str__(self) -> str:
        files = " and ".join(filter(None, [self.accounts_file_name, self.contracts_file_name]))
        return f"CRM import of {files or 'files'} ({self.get_status_display().lower()})"
