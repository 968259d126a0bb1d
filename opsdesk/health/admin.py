"""The digest in the admin: the delivery log (daily digests and weekly team roll-ups, each
row saying which) and a preview of any recipient's digest."""

from django.contrib import admin, messages
from django.urls import path
from django.utils import timezone
from django.views.generic import TemplateView
from unfold.views import UnfoldModelAdminViewMixin

from audit.admin import AuditedModelAdmin, RecordPageMixin, choice_badge, short_text
from kit.params import ParamError, date_param, pk_or_none
from kit.publish import publish_after_commit
from kit.text import count_of
from opsdesk.health.digest import DigestError, digest_build, digest_recipients, recipient_for
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


# The task that sends one delivery of each kind again (opsdesk.health.tasks).
TASKS = {
    DigestDelivery.Kind.DIGEST: "opsdesk.digest_send",
    DigestDelivery.Kind.ROLLUP: "opsdesk.team_rollup_send",
}


@admin.register(DigestDelivery)
class DigestDeliveryAdmin(RecordPageMixin, AuditedModelAdmin):
    """The delivery log: one row per recipient and date, whether it went out, and why not.
    A row's page is the record; sending again is the list's action."""

    list_display = [
        "digest_date",
        "what",
        "email",
        "status_badge",
        "attention_count",
        "customer_count",
        "attempts",
        "sent_at",
        "short_error",
    ]
    list_filter = ["kind", "status", "digest_date"]
    search_fields = ["email", "subject", "team"]
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

    @admin.display(description="what", ordering="kind")
    def what(self, delivery: DigestDelivery) -> str:
        """A daily digest, or a team roll-up and its team."""
        if delivery.kind == DigestDelivery.Kind.ROLLUP and delivery.team:
            return f"{delivery.get_kind_display()}, {delivery.team}"
        return delivery.get_kind_display()

    def has_add_permission(self, request):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The record's title says which email it is: "Team roll-up delivery"."""
        pk = pk_or_none(DigestDelivery, object_id)
        kind = DigestDelivery.objects.filter(pk=pk).values_list("kind", flat=True).first()
        extra = {"title": f"{DigestDelivery.Kind(kind).label} delivery"} if kind else {}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def get_urls(self):
        return [
            path(
                "preview/",
                self.admin_site.admin_view(DigestPreviewView.as_view(model_admin=self)),
                name="opsdesk_digestdelivery_preview",
            ),
            *super().get_urls(),
        ]

    @admin.action(description="Send failed emails again", permissions=["change"])
    def send_again(self, request, queryset):
        failed = list(queryset.filter(status=DigestDelivery.Status.FAILED))
        for delivery in failed:
            task = TASKS[delivery.kind]
            publish_after_commit(task, delivery.digest_date.isoformat(), delivery.recipient_key)
        self.message_user(
            request,
            f"{count_of(len(failed), 'email')} queued again; "
            f"{queryset.count() - len(failed)} skipped (only failed ones are sent again).",
            messages.SUCCESS if failed else messages.WARNING,
        )
