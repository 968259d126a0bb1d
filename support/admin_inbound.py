"""Inbound email's staff pages (docs/contracts/email.md: "visible to staff with its status,
like webhook events"): the list, a message's page (the record: its headers, status, ticket,
text and attachments), Retry for a failed one, and the downloads of the original and of
each attachment.

Everything on these pages came from outside: headers, names and text are shown as text
(the templates escape them; HTML is never rendered), and files are only ever downloads
(``Content-Disposition: attachment``, ``application/octet-stream``, ``nosniff``), never
shown inline, whatever type the sender claimed."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from django.contrib import admin, messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from unfold.admin import TabularInline

from audit.admin import AuditedModelAdmin, RecordPageMixin, choice_badge
from kit.params import object_or_404, pk_or_404
from kit.text import one_line
from support.email_message import UnparseableMessage, message_parse
from support.inbound import CHANGE, inbound_retry
from support.models import EmailAttachment, InboundEmail

logger = logging.getLogger(__name__)

# Who may download an email's original and attachments: whoever may view its ticket, or
# the inbound email itself.
DOWNLOAD_PERMISSIONS = ("support.view_ticket", "support.view_inboundemail")
# The headers a message's page summarises, in this order.
SUMMARY_HEADERS = (
    "From",
    "Reply-To",
    "To",
    "Cc",
    "Delivered-To",
    "Date",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "Precedence",
    "Content-Type",
)
HEADER_SHOWN_MAX = 1_000  # characters of one header (References grows with a thread)
TEXT_SHOWN_MAX = 100_000  # characters of the text; the original has the rest
RETRY_REASON = "retry requested in the admin"

STATUS_TONES = {
    InboundEmail.Status.PENDING: "info",
    InboundEmail.Status.PROCESSED: "success",
    InboundEmail.Status.FAILED: "danger",
    InboundEmail.Status.REJECTED: "warning",
}


def _may_download(user) -> bool:
    return user.is_active and any(user.has_perm(p) for p in DOWNLOAD_PERMISSIONS)


def _download(content: bytes, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(bytes(content), content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["X-Content-Type-Options"] = "nosniff"
    # A file from outside never runs as a page of this site, even opened directly.
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


def _signed_in(view):
    """Someone not signed in goes to the sign-in page; the view decides who else may."""

    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return view(request, *args, **kwargs)

    return never_cache(wrapped)


@require_GET
def original_download(request, object_id: str):
    """The message exactly as received, as ``message-<pk>.eml``."""
    if not _may_download(request.user):
        raise PermissionDenied
    inbound = object_or_404(InboundEmail, object_id, InboundEmail.objects.only("raw"))
    return _download(
        inbound.raw, filename=f"message-{inbound.pk}.eml", content_type="message/rfc822"
    )


@require_GET
def attachment_download(request, object_id: str, attachment_id: str):
    """One attachment's content, always a download under its (sanitised) name; a 404 for
    one whose content was not kept."""
    if not _may_download(request.user):
        raise PermissionDenied
    attachment = (
        EmailAttachment.objects.filter(
            inbound_id=pk_or_404(InboundEmail, object_id),
            pk=pk_or_404(EmailAttachment, attachment_id),
            refused="",
        )
        .only("filename", "content")
        .first()
    )
    if attachment is None:
        raise Http404("No such attachment, or its content was not kept.")
    return _download(
        attachment.content,
        filename=attachment.filename or f"attachment-{attachment.pk}",
        content_type="application/octet-stream",
    )


@require_POST
def retry_view(request, object_id: str):
    """The Retry button on a failed message's page."""
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied
    inbound = object_or_404(InboundEmail, object_id, InboundEmail.objects.defer("raw"))
    page = reverse("admin:support_inboundemail_change", args=[inbound.pk])
    if inbound_retry(inbound=inbound, by=request.user, actor_reason=RETRY_REASON):
        messages.success(request, "Queued again: a worker processes it within seconds.")
    else:
        messages.warning(
            request, f"Not retried: only failed messages retry, and this one is {inbound.status}."
        )
    return HttpResponseRedirect(page)


def attachment_url(attachment: EmailAttachment) -> str:
    """Where an attachment is downloaded (the ticket's conversation links here too)."""
    return reverse(
        "admin:support_inboundemail_attachment", args=[attachment.inbound_id, attachment.pk]
    )


def original_url(inbound_id: int) -> str:
    return reverse("admin:support_inboundemail_original", args=[inbound_id])


class EmailAttachmentInline(TabularInline):
    """A message's attachments on its page: what they are, and a download for each kept."""

    model = EmailAttachment
    fields = ["filename", "content_type", "size_shown", "refused", "download"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name_plural = "Attachments"

    def get_queryset(self, request):
        return super().get_queryset(request).defer("content")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Size")
    def size_shown(self, attachment):
        from django.template.defaultfilters import filesizeformat

        return filesizeformat(attachment.size)

    @admin.display(description="Download")
    def download(self, attachment):
        if attachment.refused or attachment.pk is None:
            return "—"
        return format_html(
            '<a href="{}" data-testid="attachment-download">Download</a>',
            attachment_url(attachment),
        )


@admin.register(InboundEmail)
class InboundEmailAdmin(RecordPageMixin, AuditedModelAdmin):
    """The email that reached support, newest first. A message's page is the record (it
    changes only by processing); retrying a failed one is the Retry button and action,
    which need support.change_inboundemail."""

    list_display = [
        "received_at",
        "sender",
        "subject",
        "kind",
        "status_badge",
        "ticket_link",
        "source",
    ]
    list_select_related = ["ticket"]
    list_filter = ["status", "kind", "source"]
    search_fields = ["from_address", "subject", "message_id"]
    search_help_text = "Sender address, subject or Message-ID"
    fieldsets = [
        (None, {"fields": [("status", "kind", "source"), "error", "warning"]}),
        (
            "Message",
            {
                "fields": [
                    ("from_name", "from_address"),
                    "subject",
                    "message_id",
                    ("size_shown", "original_link"),
                ]
            },
        ),
        ("Ticket", {"fields": [("ticket_link", "matched_by")]}),
        (
            "Processing",
            {
                "fields": [
                    ("received_at", "processed_at"),
                    ("attempts", "next_attempt_at"),
                    "delivery_id",
                ]
            },
        ),
    ]
    readonly_fields = [
        "status",
        "kind",
        "source",
        "error",
        "warning",
        "from_name",
        "from_address",
        "subject",
        "message_id",
        "size_shown",
        "original_link",
        "ticket_link",
        "matched_by",
        "received_at",
        "processed_at",
        "attempts",
        "next_attempt_at",
        "delivery_id",
    ]
    inlines = [EmailAttachmentInline]
    actions = ["retry_failed"]
    change_form_outer_before_template = "support/inbound_retry.html"
    change_form_after_template = "support/inbound_message.html"

    status_badge = choice_badge("status", STATUS_TONES)

    def get_queryset(self, request):
        # The raw message (up to 25 MiB) is read only where it is shown.
        return super().get_queryset(request).defer("raw")

    def has_add_permission(self, request):
        # Email arrives by the webhook or the mailbox only; nobody types one in.
        return False

    def get_urls(self):
        return [
            path(
                "<path:object_id>/retry/",
                self.admin_site.admin_view(retry_view),
                name="support_inboundemail_retry",
            ),
            path(
                "<path:object_id>/original/",
                _signed_in(original_download),
                name="support_inboundemail_original",
            ),
            path(
                "<path:object_id>/attachments/<str:attachment_id>/",
                _signed_in(attachment_download),
                name="support_inboundemail_attachment",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="From", ordering="from_address")
    def sender(self, inbound):
        if inbound.from_name:
            return f"{inbound.from_name} <{inbound.from_address}>"
        return inbound.from_address or "—"

    @admin.display(description="Ticket", ordering="ticket")
    def ticket_link(self, inbound):
        if inbound.ticket_id is None:
            return "—"
        return format_html(
            '<a href="{}" data-testid="inbound-ticket">#{} {}</a>',
            reverse("admin:support_ticket_change", args=[inbound.ticket_id]),
            inbound.ticket_id,
            inbound.ticket.subject,
        )

    @admin.display(description="Size")
    def size_shown(self, inbound):
        from django.template.defaultfilters import filesizeformat

        return filesizeformat(inbound.size)

    @admin.display(description="Original")
    def original_link(self, inbound):
        return format_html(
            '<a href="{}" data-testid="inbound-original">Download the original (.eml)</a>',
            original_url(inbound.pk),
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(inbound_message(obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description="Retry failed messages", permissions=["change"])
    def retry_failed(self, request, queryset):
        retried = sum(
            inbound_retry(
                inbound=inbound, by=request.user, actor_reason="retry requested in the admin"
            )
            for inbound in queryset.filter(status=InboundEmail.Status.FAILED).defer("raw")
        )
        skipped = queryset.count() - retried
        self.message_user(
            request,
            f"{retried} message(s) queued again; {skipped} skipped (only failed messages retry).",
            messages.SUCCESS if retried else messages.WARNING,
        )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _header(message: EmailMessage, name: str) -> str:
    """A header's values as one line of text; "" when absent or unreadable (the parser
    reads a header's structure when asked, and a malformed one raises)."""
    try:
        return _cut(
            ", ".join(one_line(str(v)) for v in message.get_all(name) or []), HEADER_SHOWN_MAX
        )
    except (ValueError, IndexError, TypeError, AttributeError):
        return ""


def _text(message: EmailMessage) -> str:
    # Imported here: support.email_content reads what a person wrote (HTML turned into
    # text), and this page only needs it when a message is opened.
    from support.email_content import email_content

    try:
        return email_content(message).full_text
    except Exception as exc:  # mail from outside: a page, never a 500
        logger.warning("inbound email text unreadable", exc_info=True)
        return f"(The text could not be read: {type(exc).__name__}. Download the original.)"


def inbound_message(inbound: InboundEmail) -> dict:
    """What a message's page shows of the original: its headers and its text (HTML turned
    into text), as plain strings for the template to escape. A message that could not be
    parsed (rejected) shows its bytes as text."""
    raw = bytes(inbound.raw)
    try:
        message = message_parse(raw)
    except UnparseableMessage as exc:
        text = raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
        return {
            "inbound_headers": [],
            "inbound_text": _cut(text, TEXT_SHOWN_MAX),
            "inbound_unreadable": str(exc),
        }
    headers = [(name, _header(message, name)) for name in SUMMARY_HEADERS]
    return {
        "inbound_headers": [(name, value) for name, value in headers if value],
        "inbound_text": _cut(_text(message), TEXT_SHOWN_MAX),
        "inbound_unreadable": "",
    }
