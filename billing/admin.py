from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from unfold.contrib.filters.admin import AutocompleteSelectFilter

from audit.admin import AuditedModelAdmin
from billing.imports import InvoiceImportError, invoices_import_file
from billing.models import Invoice

MAX_UPLOAD = 50 * 1024 * 1024


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Invoice export (CSV)",
        help_text="The billing system's export: header row, the columns of "
        "contracts/invoices-csv.md in any order. Importing the same file again changes nothing.",
    )


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
    change_list_template = "billing/invoice_change_list.html"

    def get_urls(self):
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="billing_invoice_upload",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request):
        """Upload an export: the counts, and every rejected row with its line and reason."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        result = None
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > MAX_UPLOAD:
                form.add_error("file", "The file is larger than 50 MB; split the export.")
            else:
                try:
                    result = invoices_import_file(upload.read())
                except InvoiceImportError as exc:
                    form.add_error("file", f"Nothing imported. {exc}")
                else:
                    level = messages.WARNING if result.rejected else messages.SUCCESS
                    messages.add_message(request, level, f"{upload.name}: {result.summary}.")
        return TemplateResponse(
            request,
            "billing/invoice_upload.html",
            {
                **self.admin_site.each_context(request),
                "title": "Import invoices",
                "opts": self.opts,
                "form": form,
                "result": result,
            },
        )
