import copy
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from unfold.admin import TabularInline
from unfold.contrib.filters.admin import AutocompleteSelectFilter
from unfold.decorators import display
from unfold.utils import prettify_json

from audit.admin import AuditedModelAdmin, RecordPageMixin, choice_badge, short_text
from customers.admin import IndexedSearchMixin
from customers.models import Customer
from kit.service_owned import service_owned
from kit.text import one_line
from support import admin_macros, admin_reports, admin_views, case_age, cases, tickets
from support.models import (
    Case,
    Tag,
    Ticket,
    TicketComment,
    TriageCondition,
    TriageRule,
    WebhookEvent,
)
from support.selectors import ticket_context, ticket_next_in_queue, ticket_thread
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


# The composer's buttons: what each sends (a comment kind) and the status it then sets.
SENDS = {
    "save": (None, None),
    "reply": (TicketComment.Kind.REPLY, None),
    "reply_pending": (TicketComment.Kind.REPLY, Ticket.Status.PENDING),
    "reply_solved": (TicketComment.Kind.REPLY, Ticket.Status.SOLVED),
    "note": (TicketComment.Kind.NOTE, None),
}
# The session's memory of the composer's "then open the next ticket in my queue" box.
THEN_NEXT = "ticket-then-next"


class TicketChangeForm(forms.ModelForm):
    """The ticket page's one form: the triage fields beside the conversation and the
    composer under it, sent by one of the composer's buttons (``send``).

    Each triage field carries the value the page showed (Django's hidden initial), so
    only what the person changed is applied: a change someone else made meanwhile to a
    field they did not touch stays. ``refusal``, ``then_next_default`` and ``draft`` are
    set per request by ``TicketAdmin.get_form``."""

    send = forms.ChoiceField(choices=[(name, name) for name in SENDS], required=False)
    body = forms.CharField(
        max_length=20_000,
        required=False,
        strip=True,
        label="Message",
        widget=forms.Textarea(
            attrs={
                "rows": 6,
                "placeholder": "Write a reply to the requester, or a note only staff see",
            }
        ),
    )
    then_next = forms.BooleanField(required=False, label="then open the next ticket in my queue")

    refusal = ""
    then_next_default = True
    draft = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in tickets.TICKET_UPDATE_FIELDS:
            if name in self.fields:
                self.fields[name].show_hidden_initial = True
                widget = self.fields[name].widget
                for link in ("add", "change", "delete", "view"):
                    setattr(widget, f"can_{link}_related", False)
        if "assignee" in self.fields:
            # Who may be given a ticket, and whoever has it now (else a ticket whose
            # assignee no longer works tickets could not be saved at all).
            self.fields["assignee"].queryset = (
                get_user_model()
                .objects.filter(
                    Q(pk__in=tickets.ticket_assignees().values("pk"))
                    | Q(pk=self.instance.assignee_id)
                )
                .order_by("first_name", "username")
            )
            self.fields["assignee"].empty_label = "nobody"
            self.fields["assignee"].label_from_instance = _person
        self.fields["then_next"].initial = self.then_next_default
        self.fields["body"].initial = self.draft

    def clean(self):
        data = super().clean()
        kind, _ = SENDS[data.get("send") or "save"]
        if kind and not data.get("body") and "body" not in self.errors:
            what = "reply" if kind == TicketComment.Kind.REPLY else "note"
            self.add_error("body", f"Write something first: the {what} is empty.")
        if self.refusal:
            raise forms.ValidationError(self.refusal)
        return data


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


class _Refused(Exception):
    """``ticket_update`` refused the submit: the page is shown again from the same POST,
    with the reason as the form's error."""


@admin.register(Ticket)
class TicketAdmin(IndexedSearchMixin, AuditedModelAdmin):
    """The ticket list, and the ticket page: the ticket and its conversation, read-only,
    with one form (``TicketChangeForm``) for its triage fields beside it and the composer
    under it, and beside that the customer's state. The triage queue (``queue/``) is where
    work starts.

    What the person changed and wrote goes through one service call,
    ``tickets.ticket_update`` (``change_service_fields``: the service-owned fields it
    applies; the form never saves the ticket): the priority's deadline, who may be
    assigned and the permission check are the services'. A refusal shows the page again
    with everything typed still there. After a submit the next ticket of the person's
    queue opens (unless they untick that). What the requester wrote is never a field.
    A ticket added here is opened by ``ticket_create`` (its deadline, triage)."""

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
    # The assignee is a plain list: those who may work tickets are few (ticket_assignees).
    autocomplete_fields = ["customer", "tags"]
    # The ticket page's side panel, in this order; its template shows the rest as text.
    change_fields = ["status", "priority", "assignee", "category", "tags", "queue", "customer"]
    change_service_fields = tickets.TICKET_UPDATE_FIELDS
    # The whole record, as a version in the ticket's history shows it (read-only there);
    # of it, the ticket page's form holds only ``change_fields``.
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
                ]
            },
        ),
        (
            "Service level",
            {
                "classes": ["collapse"],
                "fields": [
                    "sla_policy",
                    ("first_response_due_at", "first_responded_at", "first_response_warn_at"),
                    ("next_response_due_at", "next_response_warn_at"),
                    ("resolution_due_at", "resolution_warn_at"),
                    ("sla_due_at", "sla_warn_at", "sla_paused_at"),
                ],
            },
        ),
        (
            "From the product",
            {
                "classes": ["collapse"],
                "fields": [
                    ("tenant_id", "webhook_event"),
                    ("fingerprint", "occurrence_count"),
                    "problem",
                    ("latest_error_rate", "last_seen_at"),
                    ("created_at", "updated_at"),
                ],
            },
        ),
    ]
    # What the requester wrote is never edited; the service-owned fields the page does
    # not hand to ticket_update are shown, not edited.
    readonly_fields = [
        "subject",
        "message",
        "requester_name",
        "requester_email",
        *(name for name in service_owned(Ticket) if name not in tickets.TICKET_UPDATE_FIELDS),
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": self.add_fields})]
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else super().get_readonly_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            return super().get_form(request, obj, change, **kwargs)
        form = super().get_form(request, obj, change, form=TicketChangeForm, **kwargs)
        session = getattr(request, "session", {})
        return type(
            form.__name__,
            (form,),
            {
                "refusal": request.__dict__.get("_ticket_refusal", ""),
                "then_next_default": session.get(THEN_NEXT, True),
                "draft": request.__dict__.get("_ticket_draft", ""),
            },
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused as refused:
            # Nothing was saved (the admin's transaction rolled back): the page again,
            # from the same POST, the ticket read afresh, the refusal as the form's error.
            request.__dict__.pop("_tickets", None)
            request._ticket_refusal = str(refused)
            return super().changeform_view(request, object_id, form_url, extra_context)

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
        data = form.cleaned_data
        kind, then_status = SENDS[data.get("send") or "save"]
        try:
            obj._done = tickets.ticket_update(
                ticket=obj,
                by=request.user,
                changes={
                    name: data[name]
                    for name in tickets.TICKET_UPDATE_FIELDS
                    if name in form.changed_data
                },
                comment_kind=kind,
                body=data.get("body", ""),
                then_status=then_status,
            )
        except tickets.TicketActionError as error:
            raise _Refused(str(error)) from None
        obj._then_next = data.get("then_next", False)
        # "Save" with text in the composer: the triage is saved, the text is not lost.
        obj._draft = data.get("body", "") if kind is None else ""

    def save_related(self, request, form, formsets, change):
        if not change:  # a changed ticket's tags are ticket_update's
            super().save_related(request, form, formsets, change)

    def construct_change_message(self, request, form, formsets, add=False):
        if add:
            return super().construct_change_message(request, form, formsets, add)
        return " ".join(form.instance._done)

    def response_change(self, request, obj):
        """Say what was done, with a link back, then open the next ticket of my queue
        (the triage queue when it is empty), or this one again when the person asked to
        stay or left text in the composer."""
        here = reverse("admin:support_ticket_change", args=[obj.pk])
        request.session[THEN_NEXT] = obj._then_next
        done = " ".join(obj._done) or "nothing was changed."
        messages.success(
            request,
            format_html('On <a class="od-message-link" href="{}">#{}</a>: {}', here, obj.pk, done),
        )
        if obj._draft:
            request.session[f"ticket-draft-{obj.pk}"] = obj._draft
            messages.info(request, "Your text is still in the composer: it was not sent.")
            return HttpResponseRedirect(f"{here}#composer")
        if not obj._then_next:
            return HttpResponseRedirect(f"{here}#conversation")
        following = ticket_next_in_queue(user=request.user, after=obj)
        if following is None:
            messages.info(request, "Your queue is clear.")
            return HttpResponseRedirect(reverse("admin:support_ticket_queue"))
        return HttpResponseRedirect(reverse("admin:support_ticket_change", args=[following.pk]))

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path(
                "queue/",
                view(admin_views.TriageQueueView.as_view(model_admin=self)),
                name="support_ticket_queue",
            ),
            *admin_reports.report_urls(self),
            path("<path:object_id>/act/", view(admin_views.ticket_act), name="support_ticket_act"),
            path(
                "<path:object_id>/reply-retry/",
                view(admin_views.reply_retry_view),
                name="support_ticket_reply_retry",
            ),
            path(
                "<path:object_id>/macro/",
                view(admin_macros.ticket_macro_view),
                name="support_ticket_macro",
            ),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            # With a select_related here the changelist skips ``list_select_related``:
            # name the assignee too, or every row fetches its own.
            .select_related("customer__account_manager", "assignee", "sla_policy", "problem")
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
            if request.method == "GET":  # text a "Save" kept, handed back once
                request._ticket_draft = request.session.pop(f"ticket-draft-{ticket.pk}", "")
            extra_context = {
                **(extra_context or {}),
                "title": ticket.subject,
                # As stored: the form writes what was typed into the ticket it validates,
                # and a refused submit must not show that as the ticket's state.
                "stored": copy.copy(ticket),
                "context": ticket_context(ticket=ticket),
                "thread": ticket_thread(ticket=ticket),
                "can_comment": self.has_change_permission(request, ticket),
                "clocks": admin_views.clock_lines(ticket, timezone.now()),
                # "Apply macro" beside the composer (support.admin_macros).
                "macros": (
                    list(admin_macros.macros.macros_offered())
                    if admin_macros.may_apply_macros(request.user)
                    else []
                ),
                "is_fullwidth": "1",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            form = context["adminform"].form
            context["triage_fields"] = [
                form[name] for name in self.change_fields if name in form.fields
            ]
            context["composer"] = form if self.has_change_permission(request, obj) else None
        return super().render_change_form(request, context, add, change, form_url, obj)

    priority_badge = choice_badge("priority", PRIORITY_COLORS)

    @display(description="Tags")
    def tag_list(self, obj):
        return ", ".join(tag.name for tag in obj.tags.all()) or "—"

    @display(description="Service level", ordering="sla_due_at")
    def time_left(self, obj):
        return admin_views.clock_state(obj, timezone.now())[0]


@admin.register(WebhookEvent)
class WebhookEventAdmin(RecordPageMixin, AuditedModelAdmin):
    # An event's page is the record; retrying it is the Retry button and action, which
    # check support.change_webhookevent.
    list_display = [
        "webhook_id",
        "source",
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
    list_filter = ["source", "status", "type"]
    search_fields = ["webhook_id", "tenant_id"]
    search_help_text = "Webhook id or tenant id"
    readonly_fields = [
        "webhook_id",
        "source",
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
        # Events arrive from the product and the CRM only; nobody types one in.
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

    @display(description="Age", ordering=case_age.began_at())
    def age(self, obj):
        return case_age.age_text(obj)


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


from support import admin_inbound, admin_problems, admin_sla  # noqa: E402, F401 (register their pages)
