"""Admin pages that read across apps, and the auth models in the admin theme."""

import functools

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group, User
from django.urls import path
from django.utils import timezone
from django.views.generic import TemplateView
from unfold.admin import ModelAdmin
from unfold.decorators import action
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm
from unfold.views import UnfoldModelAdminViewMixin

from audit.admin import AuditedModelAdmin, RecordPageMixin, choice_badge, short_text
from customers.admin import CustomerAdmin
from customers.admin_trace import trace_page
from customers.models import Customer
from customers.trace import customer_trace
from kit.admin import AdminParamsMixin
from kit.params import ParamError, date_param
from kit.publish import publish_after_commit
from onboarding.selectors import customer_checklists
from opsdesk import audit_views, inbox
from opsdesk.admin_migration import AccountMigrationMixin
from opsdesk.digest import DigestError, digest_build, digest_recipients, recipient_for
from opsdesk.models import DigestDelivery
from opsdesk.selectors import customer_billing, customer_overview
from support.admin import CaseAdmin
from support.models import Case

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(AdminParamsMixin, BaseUserAdmin, ModelAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm

    def has_delete_permission(self, request, obj=None):
        # History is append-only and names its users: someone who leaves is made
        # inactive (they can no longer sign in), never deleted.
        return False


@admin.register(Group)
class GroupAdmin(AdminParamsMixin, BaseGroupAdmin, ModelAdmin):
    pass


@admin.register(Customer)
class CustomerOverviewAdmin(AccountMigrationMixin, CustomerAdmin):
    """The customer page: the record, then everything support needs about it."""

    change_form_outer_after_template = "opsdesk/customer_overview.html"
    actions_detail = [*AccountMigrationMixin.actions_detail, "audit", "as_of"]

    @action(description="Audit timeline", url_path="audit", icon="history")
    def audit(self, request, object_id):
        return audit_views.customer_audit_view(request, object_id, model_admin=self)

    @action(description="As of a date…", url_path="as-of", icon="event")
    def as_of(self, request, object_id):
        return audit_views.customer_as_of_view(request, object_id, model_admin=self)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        if customer is not None:
            extra_context = {
                **(extra_context or {}),
                "overview": customer_overview(customer=customer),
                "billing": customer_billing(customer=customer),
                "trace": customer_trace(customer, page=trace_page(request)),
                "onboarding": customer_checklists(customer=customer),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        def view(function, name, route):
            wrapped = self.admin_site.admin_view(functools.partial(function, model_admin=self))
            return path(route, wrapped, name=f"customers_customer_{name}")

        return [
            view(audit_views.audit_log_view, "audit_log", "audit-log/"),
            view(audit_views.audit_log_csv_view, "audit_log_csv", "audit-log/export.csv"),
            *super().get_urls(),
        ]


@admin.register(Case)
class CaseInboxAdmin(CaseAdmin):
    """Cases with the ops inbox (``inbox/``) and their resolution pages (opsdesk.inbox)."""

    change_form_before_template = "opsdesk/case_panel.html"

    def get_urls(self):
        def view(function):
            return self.admin_site.admin_view(function)

        return [
            path(
                "inbox/",
                view(inbox.CaseInboxView.as_view(model_admin=self)),
                name="support_case_inbox",
            ),
            path("inbox/bulk/", view(inbox.inbox_bulk), name="support_case_bulk"),
            path(
                "<path:object_id>/acknowledge/",
                view(inbox.case_acknowledge_view),
                name="support_case_acknowledge",
            ),
            path(
                "<path:object_id>/resolve/",
                view(inbox.case_close_view),
                {"state": Case.State.RESOLVED},
                name="support_case_resolve_note",
            ),
            path(
                "<path:object_id>/waive/",
                view(inbox.case_close_view),
                {"state": Case.State.WAIVED},
                name="support_case_waive",
            ),
            path(
                "<path:object_id>/recheck/",
                view(inbox.case_recheck_view),
                name="support_case_recheck",
            ),
            path(
                "<path:object_id>/resolve/<slug:key>/",
                view(inbox.case_resolve_view),
                name="support_case_resolve",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        case = self.get_object(request, object_id)
        if case is not None:
            extra_context = {
                **(extra_context or {}),
                "case_panel": inbox.case_panel(case, request.user),
            }
        return super().change_view(request, object_id, form_url, extra_context)


class DigestPreviewView(UnfoldModelAdminViewMixin, TemplateView):
    """Any recipient's digest for any date, rendered exactly as the email is."""

    title = "Digest preview"
    permission_required = ("opsdesk.view_digestdelivery",)
    template_name = "opsdesk/digest/preview.html"

    def get_context_data(self, **kwargs):
        recipients = digest_recipients()
        keys = [r.key for r in recipients]
        default_key = f"user:{self.request.user.pk}"
        key = self.request.GET.get("recipient") or (
            default_key if default_key in keys else (keys[0] if keys else "")
        )
        problems = []
        today = timezone.now().date()
        try:
            date = date_param(self.request, "date", today)
        except ParamError:
            problems.append("That date was not understood; showing today's digest.")
            date = today
        digest = None
        if key:
            try:
                digest = digest_build(date=date, recipient=recipient_for(key))
            except DigestError as error:
                problems.append(str(error))
        return super().get_context_data(
            **kwargs,
            recipients=recipients,
            selected=key,
            date=date,
            digest=digest,
            problems=problems,
            is_fullwidth="1",
        )


@admin.register(DigestDelivery)
class DigestDeliveryAdmin(RecordPageMixin, AuditedModelAdmin):
    """The delivery log: one row per recipient and date, whether it went out, and why not.
    A row's page is the record; sending again is the list's action."""

    list_display = [
        "digest_date",
        "email",
        "status_badge",
        "attention_count",
        "customer_count",
        "attempts",
        "sent_at",
        "short_error",
    ]
    list_filter = ["status", "digest_date"]
    search_fields = ["email", "subject"]
    date_hierarchy = "digest_date"
    readonly_fields = [
        f.name for f in DigestDelivery._meta.get_fields() if f.concrete and f.name != "id"
    ]
    actions = ["send_again"]

    status_badge = choice_badge(
        "status",
        {
            DigestDelivery.Status.PENDING: "info",
            DigestDelivery.Status.SENDING: "warning",
            DigestDelivery.Status.SENT: "success",
            DigestDelivery.Status.FAILED: "danger",
        },
    )

    short_error = short_text("error")

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        return [
            path(
                "preview/",
                self.admin_site.admin_view(DigestPreviewView.as_view(model_admin=self)),
                name="opsdesk_digestdelivery_preview",
            ),
            *super().get_urls(),
        ]

    @admin.action(description="Send failed digests again", permissions=["change"])
    def send_again(self, request, queryset):
        failed = list(queryset.filter(status=DigestDelivery.Status.FAILED))
        for delivery in failed:
            publish_after_commit(
                "opsdesk.send_digest", delivery.digest_date.isoformat(), delivery.recipient_key
            )
        self.message_user(
            request,
            f"{len(failed)} digest(s) queued again; {queryset.count() - len(failed)} skipped "
            "(only failed ones are sent again).",
            messages.SUCCESS if failed else messages.WARNING,
        )
