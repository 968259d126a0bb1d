"""Cases in the admin with the ops inbox and each case's resolution pages."""

from django.contrib import admin
from django.urls import path

from opsdesk.casework import inbox
from support.admin import CaseAdmin
from support.models import Case


@admin.register(Case)
class CaseInboxAdmin(CaseAdmin):
    """Cases with the ops inbox (``inbox/``) and their resolution pages (opsdesk.casework.inbox)."""

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
