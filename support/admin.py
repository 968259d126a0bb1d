import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timeuntil
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import AutocompleteSelectFilter
from unfold.decorators import display
from unfold.utils import prettify_json

from audit.admin import AuditedModelAdmin, RecordPageMixin, choice_badge, short_text
from customers.admin import IndexedSearchMixin
from customers.models import Customer
from kit.service_owned import service_owned
from kit.text import one_line
from support import admin_views, cases, tickets
from support.models import Case, Tag, Ticket, TriageCondition, TriageRule, WebhookEvent
from support.selectors import ticket_context, ticket_thread
from support.webhooks import MAX_DEPTH, event_retry, payload_depth

PRIORITY_COLORS = {
    Ticket.Priority.URGENT: "danger",
    Ticket.Priority.HIGH: "warning",
    Ticket.Priority.NORMAL: "info",
    Ticket.Priority.LOW: "primary",
}


@admin.register(Tag)
class TagAdmin(AuditedModelAdmin):
    list_display = ["name", "description"]
    search_fields = ["name", "description"]


def _become(obj, made) -> None:
    """Make the admin's unsaved ``obj`` the row a service ``made``, so the admin's own
    steps after saving (the log entry, the message, the redirect) name that row."""
    obj.__dict__.update({k: v for k, v in made.__dict__.items() if k != "_state"})
    obj._state.adding = False
    obj._state.db = made._state.db


class TicketForm(forms.ModelForm):
    def clean_subject(self) -> str:
        """A subject is one line (kit.text.one_line), and something must be left of it."""
        subject = one_line(self.cleaned_data["subject"])
        if not subject:
            raise forms.ValidationError("Give the ticket a subject.")
        return subject


@admin.register(Ticket)
class TicketAdmin(IndexedSearchMixin, AuditedModelAdmin):
    """The ticket list, and the ticket page: the ticket, its conversation and, beside
    them, the customer's state. The triage queue (``queue/``) is where work starts.

    Status, priority, assignee and tags are the ticket's actions (``support.tickets``,
    the buttons beside the ticket and in the queue), never form fields: the priority's
    deadline and the permission check are the services'. A ticket added here is opened
    by ``ticket_create`` (its deadline, triage)."""

    add_service = staticmethod(tickets.ticket_create)
    form = TicketForm
    add_fields = [
        "subject",
        "message",
        ("requester_name", "requester_email"),
        "customer",
        ("category", "priority"),
    ]

    change_form_template = "support/ticket_change_form.html"
    list_display = [
        "subject",
        "customer",
        "priority_badge",
        "status",
        "assignee",
        "time_left",
        "tag_list",
        "created_at",
    ]
    list_select_related = ["customer", "assignee"]
    list_filter = [
        "status",
        "priority",
        "category",
        "tags",
        "assignee",
        ("customer", AutocompleteSelectFilter),
    ]
    list_filter_submit = True
    search_fields = ["subject", "requester_email", "customer__name", "customer__external_id"]
    search_related = {"customer_id": (Customer, "pk", ["name", "external_id"])}
    search_help_text = (
        "Subject, requester email (a whole address matches only itself), customer name or tenant id"
    )
    autocomplete_fields = ["customer", "assignee", "tags"]
    fieldsets = [
        (None, {"fields": ["subject", "message", ("requester_name", "requester_email")]}),
        (
            "Triage",
            {
                "fields": [
                    ("status", "priority"),
                    ("category", "queue"),
                    "assignee",
                    "customer",
                    "tags",
                    ("first_response_due_at", "first_responded_at"),
                ]
            },
        ),
        (
            "From the product",
            {
                "classes": ["collapse"],
                "fields": [
                    ("tenant_id", "webhook_event"),
                    ("fingerprint", "occurrence_count"),
                    ("latest_error_rate", "last_seen_at"),
                    ("created_at", "updated_at"),
                ],
            },
        ),
    ]
    readonly_fields = service_owned(Ticket)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": self.add_fields})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            data = form.cleaned_data
            _become(
                obj,
                tickets.ticket_create(
                    by=request.user,
                    subject=data["subject"],
                    message=data["message"],
                    requester_name=data["requester_name"],
                    requester_email=data["requester_email"],
                    customer=data["customer"],
                    category=data["category"],
                    priority=data["priority"],
                ),
            )
            return
        # Only what the form changed: a status or priority an action set meanwhile
        # is not written back as it was when the page loaded.
        changed = [
            name for name in form.changed_data if not Ticket._meta.get_field(name).many_to_many
        ]
        if changed:
            obj.save(update_fields=[*changed, "updated_at"])

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path(
                "queue/",
                view(admin_views.TriageQueueView.as_view(model_admin=self)),
                name="support_ticket_queue",
            ),
            path("<path:object_id>/act/", view(admin_views.ticket_act), name="support_ticket_act"),
            path(
                "<path:object_id>/comment/",
                view(admin_views.ticket_comment),
                name="support_ticket_comment",
            ),
            path(
                "<path:object_id>/reply-retry/",
                view(admin_views.reply_retry_view),
                name="support_ticket_reply_retry",
            ),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            # With a select_related here the changelist skips ``list_select_related``:
            # name the assignee too, or every row fetches its own.
            .select_related("customer__account_manager", "assignee")
            .prefetch_related("tags")
        )

    def get_object(self, request, object_id, from_field=None):
        # The ticket page reads the ticket for its context before the admin reads it
        # for the form: one fetch per request serves both.
        fetched = request.__dict__.setdefault("_tickets", {})
        if (object_id, from_field) not in fetched:
            fetched[object_id, from_field] = super().get_object(request, object_id, from_field)
        return fetched[object_id, from_field]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        ticket = self.get_object(request, object_id)
        if ticket is not None:
            extra_context = {
                **(extra_context or {}),
                "context": ticket_context(ticket=ticket),
                "thread": ticket_thread(ticket=ticket),
                "draft": request.session.pop(f"ticket-draft-{ticket.pk}", None),
                "can_comment": self.has_change_permission(request, ticket),
                "actions": {
                    "priorities": Ticket.Priority.choices,
                    "statuses": Ticket.Status.choices,
                    "assignees": tickets.ticket_assignees(),
                    "tag_names": list(Tag.objects.values_list("name", flat=True)),
                },
                "is_fullwidth": "1",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    priority_badge = choice_badge("priority", PRIORITY_COLORS)

    @display(description="Tags")
    def tag_list(self, obj):
        return ", ".join(tag.name for tag in obj.tags.all()) or "—"

    @display(description="First response", ordering="first_response_due_at")
    def time_left(self, obj):
        return admin_views.first_response_state(obj, timezone.now())[0]


@admin.register(WebhookEvent)
class WebhookEventAdmin(RecordPageMixin, AuditedModelAdmin):
    # An event's page is the record; retrying it is the Retry button and action, which
    # check support.change_webhookevent.
    list_display = [
        "webhook_id",
        "type",
        "tenant_id",
        "status_badge",
        "attempts",
        "short_error",
        "warning",
        "received_at",
        "processed_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "type"]
    search_fields = ["webhook_id", "tenant_id"]
    search_help_text = "Webhook id or tenant id"
    readonly_fields = [
        "webhook_id",
        "type",
        "tenant_id",
        "status",
        "attempts",
        "next_attempt_at",
        "error",
        "warning",
        "details",
        "received_at",
        "processed_at",
        "payload_shown",
        "raw_body",
    ]
    exclude = ["payload"]  # shown by payload_shown, in bounded time
    actions = ["retry_failed"]
    change_form_outer_before_template = "support/webhookevent_retry.html"

    status_badge = choice_badge(
        "status",
        {
            WebhookEvent.Status.PENDING: "info",
            WebhookEvent.Status.PROCESSED: "success",
            WebhookEvent.Status.FAILED: "danger",
            WebhookEvent.Status.REJECTED: "warning",
        },
    )

    short_error = short_text("error")

    PAYLOAD_SHOWN = 20_000  # characters

    @admin.display(description="Payload")
    def payload_shown(self, event):
        """Highlighted and indented when small and shallow (every event the receiver
        accepts); else compact and cut, because indenting makes a deep payload grow with
        the square of its depth (900 levels took minutes to render)."""
        if event.payload is None:
            return "-"
        try:
            text = json.dumps(event.payload, ensure_ascii=False)
        except RecursionError:
            return "Nested too deeply to show."
        if len(text) <= self.PAYLOAD_SHOWN and payload_depth(event.payload) <= MAX_DEPTH:
            return prettify_json(event.payload, None) or text
        return format_html(
            "<p>Payload shown up to its first {} characters (of {}), unformatted.</p>"
            '<pre style="white-space: pre-wrap; word-break: break-all">{}</pre>',
            f"{self.PAYLOAD_SHOWN:,}",
            f"{len(text):,}",
            text[: self.PAYLOAD_SHOWN],
        )

    def has_add_permission(self, request):
        # Events arrive from the product only; nobody types one in.
        return False

    def get_urls(self):
        return [
            path(
                "<path:object_id>/retry/",
                self.admin_site.admin_view(admin_views.event_retry_view),
                name="support_webhookevent_retry",
            ),
            *super().get_urls(),
        ]

    @admin.action(description="Retry failed events", permissions=["change"])
    def retry_failed(self, request, queryset):
        retried = sum(
            event_retry(event=event, actor_reason="retry requested in the admin")
            for event in queryset.filter(status=WebhookEvent.Status.FAILED)
        )
        skipped = queryset.count() - retried
        self.message_user(
            request,
            f"{retried} event(s) queued again; {skipped} skipped (only failed events retry).",
            messages.SUCCESS if retried else messages.WARNING,
        )


class CaseAdmin(RecordPageMixin, AuditedModelAdmin):
    # A case's page is the record; changing a case is the inbox's workflows, which check
    # support.change_case themselves.
    """Registered by ``opsdesk.admin`` with the ops inbox and the resolution pages: a case
    changes only through them (``support.cases``, ``opsdesk.casework.resolutions``: acknowledge,
    assign, resolve, waive), so its page shows the record with nothing to save. A case
    added here is opened by ``case_open_by_hand``: raising it again finds it."""

    add_service = staticmethod(cases.case_open_by_hand)

    list_display = ["summary", "kind", "state_badge", "customer", "owner", "opened_at", "age"]
    list_select_related = ["customer", "owner"]
    list_filter = ["state", "kind", "owner", ("customer", AutocompleteSelectFilter)]
    list_filter_submit = True
    search_fields = ["summary", "customer__name", "customer__external_id", "dedupe_key"]
    autocomplete_fields = ["customer"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            # Only someone who may work cases can own one (as ``cases_assign`` demands).
            from support.cases import case_owners

            kwargs["queryset"] = case_owners()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    record = [
        ("kind", "state"),
        "customer",
        "summary",
        ("expected", "found"),
        ("expected_amount", "found_amount"),
        ("opened_at", "acknowledged_at", "closed_at"),
        "closing_note",
        ("subject_type", "subject_id"),
        "details",
        "dedupe_key",
    ]
    # Whoever opens a case by hand says what it is about; the rest is the workflow's.
    add_fields = [
        "kind",
        "customer",
        "summary",
        ("expected", "found"),
        ("expected_amount", "found_amount"),
        "owner",
    ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else service_owned(Case)

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": self.add_fields})]
        # The case page shows the case above the form (opsdesk/case_panel.html).
        return [("Record", {"fields": self.record, "classes": ["collapse"]})]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            case, created = cases.case_open_by_hand(
                by=request.user,
                kind=data["kind"],
                customer=data["customer"],
                summary=data["summary"],
                expected=data["expected"],
                found=data["found"],
                expected_amount=data["expected_amount"],
                found_amount=data["found_amount"],
                owner=data["owner"],
            )
        except cases.CaseError as error:
            raise PermissionDenied(str(error)) from None
        _become(obj, case)
        obj._already_open = not created

    def log_addition(self, request, obj, message):
        if getattr(obj, "_already_open", False):
            return None  # nothing was added
        return super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        if getattr(obj, "_already_open", False):
            self.message_user(
                request,
                f"Nothing added: this problem is case #{obj.pk} already "
                f"({obj.get_state_display().lower()}); here it is.",
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:support_case_change", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    state_badge = choice_badge(
        "state",
        {
            Case.State.OPEN: "danger",
            Case.State.ACKNOWLEDGED: "warning",
            Case.State.RESOLVED: "success",
            Case.State.WAIVED: "info",
        },
    )

    @display(description="Age", ordering="opened_at")
    def age(self, obj):
        return timeuntil(obj.closed_at or timezone.now(), obj.opened_at)


class TriageConditionInline(TabularInline):
    model = TriageCondition
    extra = 1
    fields = ["field", "operator", "value"]


@admin.register(TriageRule)
class TriageRuleAdmin(AuditedModelAdmin):
    list_display = [
        "name",
        "position",
        "is_active",
        "match_all",
        "set_priority",
        "assign_queue",
        "assign_to",
        "stop_processing",
    ]
    list_editable = ["position", "is_active"]
    list_select_related = ["assign_to"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    autocomplete_fields = ["assign_to"]
    filter_horizontal = ["add_tags"]
    inlines = [TriageConditionInline]
    fieldsets = [
        (None, {"fields": ["name", "position", "is_active", "match_all", "stop_processing"]}),
        ("Then", {"fields": ["add_tags", "set_priority", "assign_queue", "assign_to"]}),
    ]


from support import admin_inbound  # noqa: E402, F401 (registers inbound email's pages)
