"""The digest in the admin: its delivery log and a preview of any recipient's digest."""

from django.contrib import admin, messages
from django.urls import path
from django.utils import timezone
from django.views.generic import TemplateView
from unfold.views import UnfoldModelAdminViewMixin

from audit.admin import AuditedModelAdmin, RecordPageMixin, choice_badge, short_text
from kit.params import ParamError, date_param
from kit.publish import publish_after_commit
from opsdesk.health.digest import DigestError, digest_build, digest_recipients, recipient_for
from opsdesk.health.rollup import ROLLUP_PREFIX
from opsdesk.models import DigestDelivery


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


class DeliveryKindFilter(admin.SimpleListFilter):
    """Daily digests or weekly team roll-ups: one log, told apart by the key's prefix."""

    title = "email"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        return [("digest", "Daily digests"), ("rollup", "Team roll-ups")]

    def queryset(self, request, queryset):
        if self.value() == "rollup":
            return queryset.filter(recipient_key__startswith=ROLLUP_PREFIX)
        if self.value() == "digest":
            return queryset.exclude(recipient_key__startswith=ROLLUP_PREFIX)
        return queryset


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
    list_filter = [DeliveryKindFilter, "status", "digest_date"]
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
            # Team roll-ups share the log, told apart by their key's prefix.
            is_rollup = delivery.recipient_key.startswith(ROLLUP_PREFIX)
            task = "opsdesk.rollup_send" if is_rollup else "opsdesk.digest_send"
            publish_after_commit(task, delivery.digest_date.isoformat(), delivery.recipient_key)
        self.message_user(
            request,
            f"{len(failed)} digest(s) queued again; {queryset.count() - len(failed)} skipped "
            "(only failed ones are sent again).",
            messages.SUCCESS if failed else messages.WARNING,
        )
