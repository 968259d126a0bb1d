from django.contrib import admin
from unfold.contrib.filters.admin import AutocompleteSelectFilter

from audit.admin import AuditedModelAdmin
from billing.models import Invoice


@admin.register(Invoice)
class InvoiceAdmin(AuditedModelAdmin):
    list_display = [
        "number",
        "customer",
        "status",
        "currency",
        "amount_due",
        "amount_paid",
        "period_start",
        "period_end",
        "due_at",
    ]
    list_select_related = ["customer"]
    list_filter = ["status", "currency", ("customer", AutocompleteSelectFilter)]
    list_filter_submit = True
    search_fields = ["number", "external_id", "tenant_id", "customer__name"]
    autocomplete_fields = ["customer"]
    readonly_fields = ["imported_at"]
