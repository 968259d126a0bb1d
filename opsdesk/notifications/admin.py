"""Staff notifications in the admin: "My notifications" (the signed-in person's, and
nobody else's) and their preferences page.

Both are the person's own, like their password: every active staff member opens them
without a model permission, and neither takes a user from the request, so nobody reads
or changes another person's (a superuser included).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from audit.admin import AuditedModelAdmin, choice_badge
from opsdesk.models import Notification, NotificationPreference
from opsdesk.notifications.services import (
    PREFERENCE_FIELDS,
    PreferenceError,
    notification_preference_set,
)


def _own_page(request) -> bool:
    return request.user.is_active and request.user.is_staff


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = NotificationPreference
        fields = PREFERENCE_FIELDS
        widgets = {"rollup_minutes": forms.NumberInput(attrs={"min": 5, "max": 1440})}


@admin.register(Notification)
class NotificationAdmin(AuditedModelAdmin):
    """My notifications: what opsdesk told me, newest first, and whether it was emailed."""

    list_display = ["created_at", "kind", "subject", "open_link", "status_badge", "sent_at"]
    list_display_links = ["created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["subject"]
    readonly_fields = [
        "kind",
        "subject",
        "text",
        "url",
        "team",
        "status",
        "due_at",
        "attempts",
        "last_attempt_at",
        "error",
        "sent_at",
        "created_at",
    ]
    fields = readonly_fields

    status_badge = choice_badge(
        "status",
        {
            Notification.Status.PENDING: "info",
            Notification.Status.ROLLUP: "info",
            Notification.Status.SENT: "success",
            Notification.Status.FAILED: "danger",
            Notification.Status.OFF: "",
        },
        description="Email",
    )

    @admin.display(description="Record")
    def open_link(self, obj):
        # Stored links are paths of this site (services._path); checked again here, as a
        # page must never link what it did not make.
        if not obj.url.startswith("/") or obj.url.startswith("//"):
            return "—"
        return format_html('<a href="{}">Open</a>', obj.url)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(recipient=request.user)

    def has_module_permission(self, request):
        return _own_page(request)

    def has_view_permission(self, request, obj=None):
        return _own_page(request) and (obj is None or obj.recipient_id == request.user.pk)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "preferences/",
                self.admin_site.admin_view(self.preferences_view),
                name="opsdesk_notification_preferences",
            ),
            *super().get_urls(),
        ]

    def preferences_view(self, request):
        """The signed-in person's preferences: how each kind of notice reaches them."""
        user = request.user
        preference = NotificationPreference.objects.filter(
            user=user
        ).first() or NotificationPreference(user=user)
        form = PreferencesForm(
            request.POST if request.method == "POST" else None, instance=preference
        )
        if form.is_bound and form.is_valid():
            try:
                notification_preference_set(
                    user=user, **{name: form.cleaned_data[name] for name in PREFERENCE_FIELDS}
                )
            except PreferenceError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, "Your notification preferences are saved.")
                return HttpResponseRedirect(request.path)
        return TemplateResponse(
            request,
            "opsdesk/notifications/preferences.html",
            {
                **self.admin_site.each_context(request),
                "title": "Notification settings",
                "opts": self.opts,
                "form": form,
                "rollup_default": settings.OPSDESK_NOTIFY_ROLLUP_MINUTES,
                "mine": reverse("admin:opsdesk_notification_changelist"),
            },
        )
