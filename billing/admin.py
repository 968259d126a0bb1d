from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode
from unfold.contrib.filters.admin import AutocompleteSelectFilter
from unfold.decorators import display

from audit.admin import AuditedModelAdmin, SystemMadeMixin, choice_badge, short_text
from billing.imports import InvoiceImportError, invoices_import_file
from billing.models import Invoice, InvoiceImport, ReconciliationRun
from billing.reconciliation import BILLING_KINDS, parse_month, run_started_by, runs_with_starter
from kit.months import add_months, month_start
from kit.publish import publish_after_commit
from support.models import Case

MAX_UPLOAD = 50 * 1024 * 1024
NOWRAP = '<span style="white-space:nowrap">{}</span>'


class UploadForm(forms.Form):
    file = forms.FileField(
        label="Invoice export (CSV)",
        help_text="The billing system's export: header row, the columns of "
        "docs/contracts/invoices-csv.md in any order. Importing the same file again "
        "changes nothing.",
    )


@admin.register(Invoice)
class InvoiceAdmin(SystemMadeMixin, AuditedModelAdmin):  # imported from the billing system
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
        if not self.may_make(request):
            raise PermissionDenied
        result = None
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > MAX_UPLOAD:
                form.add_error("file", "The file is larger than 50 MB; split the export.")
            else:
                try:
                    result = invoices_import_file(upload.read(), file_name=upload.name)
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


class StartRunForm(forms.Form):
    month = forms.CharField(
        label="Month",
        widget=forms.DateInput(attrs={"type": "month"}),
        help_text="Every customer's expected charges against its invoices for that month.",
    )

    def clean_month(self):
        try:
            return parse_month(self.cleaned_data["month"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(SystemMadeMixin, AuditedModelAdmin):
    """The runs, newest first; a run's page shows its progress while it runs and then
    what it found. Runs are started from here ("Reconcile a month") or by beat."""

    list_display = [
        "month_label",
        "scope",
        "status_badge",
        "progress_label",
        "finding_counts",
        "opened",
        "resolved",
        "duration_label",
        "started_by_name",
        "started_label",
    ]
    list_select_related = ["customer"]
    list_filter = ["status", "month"]
    change_list_template = "billing/reconciliationrun_change_list.html"
    change_form_before_template = "billing/reconciliationrun_progress.html"
    fieldsets = [
        (
            "Record",
            {
                "classes": ["collapse"],
                "fields": [
                    ("month", "customer"),
                    ("status", "stage", "progress"),
                    ("started_by_name", "started_at", "finished_at"),
                    ("customers_checked", "opened", "updated", "resolved"),
                    "findings",
                    "error",
                ],
            },
        )
    ]
    readonly_fields = [
        "month",
        "customer",
        "status",
        "stage",
        "progress",
        "started_by_name",
        "started_at",
        "finished_at",
        "customers_checked",
        "findings",
        "opened",
        "updated",
        "resolved",
        "error",
    ]

    status_badge = choice_badge(
        "status",
        {
            ReconciliationRun.Status.RUNNING: "info",
            ReconciliationRun.Status.SUCCEEDED: "success",
            ReconciliationRun.Status.FAILED: "danger",
        },
    )

    def has_change_permission(self, request, obj=None):
        return False  # a run is a record of what happened

    def get_queryset(self, request):
        return runs_with_starter(super().get_queryset(request))

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "start/",
                self.admin_site.admin_view(self.start_view),
                name="billing_reconciliationrun_start",
            ),
            *super().get_urls(),
        ]

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:billing_reconciliationrun_start"))

    def start_view(self, request):
        """Queue the reconciliation of a month; the worker runs it."""
        if not self.may_make(request):
            raise PermissionDenied
        form = StartRunForm(
            request.POST or None,
            initial={"month": f"{add_months(month_start(timezone.now().date()), -1):%Y-%m}"},
        )
        if request.method == "POST" and form.is_valid():
            month = form.cleaned_data["month"]
            # The worker's run names who asked for it (billing.tasks.on_behalf_of), and
            # a second click is answered by the run the first one started.
            publish_after_commit(
                "billing.reconciliation_run",
                month.isoformat(),
                None,
                request.user.pk,
                timezone.now().isoformat(),
            )
            messages.success(
                request,
                f"Reconciliation of {month:%Y-%m} queued: it appears below within seconds.",
            )
            return HttpResponseRedirect(reverse("admin:billing_reconciliationrun_changelist"))
        return TemplateResponse(
            request,
            "billing/reconciliationrun_start.html",
            {
                **self.admin_site.each_context(request),
                "title": "Reconcile a month",
                "opts": self.opts,
                "form": form,
            },
        )

    def changelist_view(self, request, extra_context=None):
        running = ReconciliationRun.objects.filter(status=ReconciliationRun.Status.RUNNING)
        extra_context = {**(extra_context or {}), "refresh": running.exists()}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        if run is not None:
            inbox = reverse("admin:support_case_inbox")
            # A re-check counted one customer's findings: its links list only those.
            scope = {"customer": run.customer.external_id} if run.customer_id else {}

            def link(kind):
                query = {"state": "all", "kind": kind, "month": f"{run.month:%Y-%m}", **scope}
                return f"{inbox}?{urlencode(query)}"

            extra_context = {
                **(extra_context or {}),
                "run": run,
                "started_by": run_started_by(run),
                "kinds": [
                    (label, run.findings.get(kind, 0), link(kind))
                    for kind, label in Case.Kind.choices
                    if kind in BILLING_KINDS
                ],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @display(description="Month", ordering="month")
    def month_label(self, obj):
        return format_html(NOWRAP, f"{obj.month:%Y-%m}")

    @display(description="Started by", ordering="started_by")
    def started_by_name(self, obj):
        return run_started_by(obj)

    @display(description="For")
    def scope(self, obj):
        return obj.customer.name if obj.customer_id else "every customer"

    @display(description="Started", ordering="started_at")
    def started_label(self, obj):
        started = timezone.localtime(obj.started_at)
        return format_html(NOWRAP, f"{started:%d %b %Y %H:%M}")

    @display(description="Progress")
    def progress_label(self, obj):
        return f"{obj.progress}% · {obj.stage}" if obj.status == "running" else f"{obj.progress}%"

    @display(description="Findings")
    def finding_counts(self, obj):
        parts = [
            f"{count} {kind.replace('_', ' ')}" for kind, count in sorted(obj.findings.items())
        ]
        return ", ".join(parts) or "none"

    @display(description="Duration")
    def duration_label(self, obj):
        return f"{obj.duration.total_seconds():.1f} s"


@admin.register(InvoiceImport)
class InvoiceImportAdmin(SystemMadeMixin, AuditedModelAdmin):
    """Every import of the billing export, newest first: what it did to the rows, or why
    the file or some rows were refused. A record of what happened, made by the import
    (the upload page or ``import_invoices``); the freshness panel links here."""

    list_display = [
        "received_at",
        "file_name",
        "status_badge",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "short_error",
        "started_by",
    ]
    list_filter = ["status"]
    search_fields = ["file_name"]
    search_help_text = "File name"
    readonly_fields = [
        "received_at",
        "file_name",
        "started_by",
        "status",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "error",
    ]

    status_badge = choice_badge(
        "status",
        {InvoiceImport.Status.SUCCEEDED: "success", InvoiceImport.Status.FAILED: "danger"},
    )
    short_error = short_text("error")

    def has_change_permission(self, request, obj=None):
        return False  # an import is a record of what happened
