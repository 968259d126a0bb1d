"""The CRM imports' pages: the upload of the CRM's exports (ops leads), and each import's
record, which shows its progress while the worker runs it and then what became of the
rows (``customers.crm_import``)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from unfold.decorators import display

from audit.admin import AuditedModelAdmin, SystemMadeMixin, choice_badge
from customers.crm import LINK
from customers.crm_import import (
    ACCOUNTS,
    CONTRACTS,
    MAX_FILE_BYTES,
    OUTCOMES,
    CrmFileError,
    crm_file_text,
    crm_import_queue,
)
from customers.models import CrmImport
from kit.csv_export import export_lines
from kit.dates import moment_text

NOWRAP = '<span style="white-space:nowrap">{}</span>'
UNFINISHED = (CrmImport.Status.QUEUED, CrmImport.Status.RUNNING)


class UploadForm(forms.Form):
    accounts = forms.FileField(
        label="Accounts (CSV)",
        help_text="The CRM's accounts: a header row naming the fields of crm.account.upserted "
        "(crm_id, name, updated_at; tenant_id, account_manager_email, status may be left out).",
    )
    contracts = forms.FileField(
        label="Contracts (CSV)",
        required=False,
        help_text="Their contracts, taken after the accounts: the fields of "
        "crm.contract.upserted, integrations separated by spaces.",
    )

    def clean(self):
        data = super().clean()
        for crm_file in (ACCOUNTS, CONTRACTS):
            upload = data.get(crm_file.kind)
            if not upload:
                continue
            if upload.size > MAX_FILE_BYTES:
                self.add_error(
                    crm_file.kind,
                    f"The file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB: split it, "
                    "or run import_crm on the server.",
                )
                continue
            content = upload.read()
            try:
                crm_file_text(content, crm_file)
            except CrmFileError as exc:
                self.add_error(crm_file.kind, str(exc))
                continue
            data[crm_file.kind] = (upload.name, content)
        return data


class CrmImportAdmin(SystemMadeMixin, AuditedModelAdmin):
    """Every import of the CRM's exports, newest first. An import's page shows its progress
    while it runs, then its counts and its rejected and warned rows by line. Made by the
    upload page (whoever may take CRM records by hand) or ``import_crm``; read-only."""

    list_display = [
        "received_label",
        "files",
        "status_badge",
        "progress_label",
        "accounts_counts",
        "contracts_counts",
        "rejected",
        "warnings",
        "started_by_label",
    ]
    list_filter = ["status"]
    list_select_related = ["requested_by"]
    search_fields = ["accounts_file_name", "contracts_file_name"]
    search_help_text = "File name"
    change_list_template = "customers/crmimport_change_list.html"
    change_form_before_template = "customers/crmimport_progress.html"
    fieldsets = [
        (
            "Record",
            {
                "classes": ["collapse"],
                "fields": [
                    ("accounts_file_name", "contracts_file_name"),
                    ("status", "stage", "progress", "attempts"),
                    ("started_by", "requested_by"),
                    ("received_at", "started_at", "finished_at"),
                    ("rejected", "warnings"),
                    "error",
                ],
            },
        )
    ]
    readonly_fields = [
        "accounts_file_name",
        "contracts_file_name",
        "status",
        "stage",
        "progress",
        "attempts",
        "started_by",
        "requested_by",
        "received_at",
        "started_at",
        "finished_at",
        "rejected",
        "warnings",
        "error",
    ]

    status_badge = choice_badge(
        "status",
        {
            CrmImport.Status.QUEUED: "info",
            CrmImport.Status.RUNNING: "info",
            CrmImport.Status.SUCCEEDED: "success",
            CrmImport.Status.ROWS_REJECTED: "warning",
            CrmImport.Status.FAILED: "danger",
        },
    )

    def get_queryset(self, request):
        # The stored files are the worker's to read, never a page's.
        return super().get_queryset(request).defer("accounts_csv", "contracts_csv")

    def may_make(self, request) -> bool:
        """Taking CRM records by hand is ``customers.link_crm_account`` (customers.crm): an
        upload takes them in the name of whoever sends it."""
        return request.user.is_active and request.user.has_perm(LINK)

    def has_view_permission(self, request, obj=None):
        # Whoever may upload follows the imports, theirs and the others', on these pages.
        return super().has_view_permission(request, obj) or self.may_make(request)

    def has_change_permission(self, request, obj=None):
        return False  # an import is a record of what happened

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="customers_crmimport_upload",
            ),
            path(
                "<path:object_id>/notes.csv",
                self.admin_site.admin_view(self.notes_view),
                name="customers_crmimport_notes",
            ),
            *super().get_urls(),
        ]

    def upload_view(self, request):
        """The files checked at once (UTF-8 CSV, a header naming the columns, the size),
        stored, and run by the worker; its page follows the progress."""
        if not self.may_make(request):
            raise PermissionDenied
        form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
        status = 200
        if request.method == "POST":
            if form.is_valid():
                record = crm_import_queue(
                    accounts=form.cleaned_data["accounts"],
                    contracts=form.cleaned_data["contracts"] or None,
                    by=request.user,
                )
                messages.success(request, "Files received: the import starts within seconds.")
                return HttpResponseRedirect(
                    reverse("admin:customers_crmimport_change", args=[record.pk])
                )
            status = 400
        return TemplateResponse(
            request,
            "customers/crmimport_upload.html",
            {
                **self.admin_site.each_context(request),
                "title": "Import accounts and contracts from the CRM",
                "opts": self.opts,
                "form": form,
                "max_mb": MAX_FILE_BYTES // 1024 // 1024,
            },
            status=status,
        )

    def notes_view(self, request, object_id):
        """The rejected and warned rows as CSV, to correct in a spreadsheet (every cell
        quoted, formulas neutralised: kit.csv_export)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        record = self.get_object(request, object_id)
        if record is None:
            raise Http404("No such import.")
        rows = (
            [
                note["file"],
                note["line"],
                note["crm_id"],
                "rejected" if note["rejected"] else "warning",
                note["message"],
            ]
            for note in record.notes
        )
        response = StreamingHttpResponse(
            export_lines(["file", "line", "crm_id", "what", "message"], rows),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="crm-import-{record.pk}.csv"'
        return response

    def changelist_view(self, request, extra_context=None):
        running = CrmImport.objects.filter(status__in=UNFINISHED)
        extra_context = {**(extra_context or {}), "refresh": running.exists()}
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        record = self.get_object(request, object_id)
        if record is not None:
            more = record.rejected + record.warnings - len(record.notes)
            extra_context = {
                **(extra_context or {}),
                "crm_import": record,
                "running": record.status in UNFINISHED,
                "counts": [
                    (kind, [record.counts[kind].get(name, 0) for name in (*OUTCOMES, "rejected")])
                    for kind in ("accounts", "contracts")
                    if kind in record.counts
                ],
                "outcomes": (*OUTCOMES, "rejected"),
                "more": max(more, 0),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @display(description="Received", ordering="received_at")
    def received_label(self, obj):
        return format_html(NOWRAP, moment_text(obj.received_at))

    @display(description="Files")
    def files(self, obj):
        return " + ".join(filter(None, [obj.accounts_file_name, obj.contracts_file_name]))

    @display(description="Started by", ordering="started_by")
    def started_by_label(self, obj):
        return obj.started_by_name

    @display(description="Progress")
    def progress_label(self, obj):
        return f"{obj.progress}% · {obj.stage}" if obj.status in UNFINISHED else f"{obj.progress}%"

    @display(description="Accounts")
    def accounts_counts(self, obj):
        return _counts(obj.counts.get("accounts"))

    @display(description="Contracts")
    def contracts_counts(self, obj):
        return _counts(obj.counts.get("contracts"))


def _counts(counts: dict | None) -> str:
    if not counts:
        return "—"
    return ", ".join(f"{counts.get(name, 0)} {name}" for name in OUTCOMES)


admin.site.register(CrmImport, CrmImportAdmin)
