"""Macros' pages ("Macros" under Support) and applying one to a ticket.

Support and ops leads write macros here, as data: a reply whose placeholders are checked
when it is saved (``Macro.clean``), field changes, and at most one workflow. On a ticket's
page, "Apply macro" opens the preview (``support_ticket_macro``, ``?macro=<id>``): GET
shows exactly what applying it would do (``support.macros.macro_preview``), its POST
applies exactly that (``macro_apply``) or says why not, changing nothing. Everything shown
that came from outside (the ticket's subject, names, the reply) is text: the template
escapes it."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from unfold.decorators import display
from unfold.widgets import UnfoldAdminTextareaWidget

from audit.admin import AuditedModelAdmin
from kit.admin import report_refusal
from kit.params import object_or_404, pk_or_none
from support import macros, tickets
from support.models import MACRO_PLACEHOLDERS, Macro, Ticket

VIEW_MACRO = "support.view_macro"


def _placeholders_help() -> str:
    listed = "; ".join(f"{{{name}}}: {meaning}" for name, meaning in MACRO_PLACEHOLDERS.items())
    workflow = "; ".join(
        f"{{{name}}}: {meaning}"
        for names in Macro.WORKFLOW_PLACEHOLDERS.values()
        for name, meaning in names.items()
    )
    return (
        "Emailed to the requester when the macro is applied; empty: no reply. "
        f"Placeholders: {listed}. With the workflow: {workflow}. "
        "Write a literal brace as {{ or }}."
    )


class MacroForm(forms.ModelForm):
    class Meta:
        model = Macro
        fields = [
            "name",
            "is_active",
            "reply",
            "set_status",
            "set_priority",
            "add_tags",
            "remove_tags",
            "set_queue",
            "assign",
            "assignee",
            "workflow",
        ]
        widgets = {"reply": UnfoldAdminTextareaWidget(attrs={"rows": 8})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "reply" in self.fields:  # a page that may only view the macro has none
            self.fields["reply"].help_text = _placeholders_help()
        if "assignee" in self.fields:
            # Who may be given a ticket, and whoever the macro names now.
            self.fields["assignee"].queryset = (
                get_user_model()
                .objects.filter(
                    Q(pk__in=tickets.ticket_assignees().values("pk"))
                    | Q(pk=self.instance.assignee_id)
                )
                .order_by("first_name", "username")
            )
            self.fields["assignee"].label_from_instance = macros.person_name

    def clean(self):
        data = super().clean()
        both = {tag.name for tag in data.get("add_tags") or ()} & {
            tag.name for tag in data.get("remove_tags") or ()
        }
        if both:
            self.add_error(
                "remove_tags",
                f"{', '.join(sorted(both))}: a tag is added or removed, not both.",
            )
        does = [
            data.get(name)
            for name in (
                "reply",
                "set_status",
                "set_priority",
                "add_tags",
                "remove_tags",
                "set_queue",
                "assign",
                "workflow",
            )
        ]
        if not any(value for value in does if value is not None) and not self.errors:
            raise forms.ValidationError(
                "The macro does nothing yet: write a reply, choose a change or a workflow."
            )
        return data


@admin.register(Macro)
class MacroAdmin(AuditedModelAdmin):
    form = MacroForm
    list_display = ["name", "is_active", "does", "workflow"]
    list_filter = ["is_active", "workflow"]
    search_fields = ["name", "reply"]
    search_help_text = "Name or reply text"
    autocomplete_fields = ["add_tags", "remove_tags"]
    fieldsets = [
        (None, {"fields": ["name", "is_active"]}),
        ("Reply", {"fields": ["reply"]}),
        (
            "Changes to the ticket",
            {
                "fields": [
                    ("set_status", "set_priority"),
                    ("add_tags", "remove_tags"),
                    "set_queue",
                    ("assign", "assignee"),
                ]
            },
        ),
        ("Workflow", {"fields": ["workflow"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("add_tags", "remove_tags")

    @display(description="Does")
    def does(self, obj):
        return macros.macro_summary(obj)


# --- Applying a macro to a ticket -----------------------------------------------------


class ApplyForm(forms.Form):
    macro = forms.IntegerField(min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)
    # What the page showed (audit.previews): the POST applies exactly that or refuses.
    previewed = forms.CharField(required=False, max_length=10_000, widget=forms.HiddenInput)


def may_apply_macros(user) -> bool:
    """Whether the ticket page offers macros to ``user``: who works tickets and reads
    the macros (the services check again)."""
    return user.has_perm(macros.APPLY) and user.has_perm(VIEW_MACRO)


def ticket_macro_view(request, object_id: str):
    """The preview of one macro on one ticket (GET ``?macro=<id>``) and its application
    (POST): applied, back to the ticket with what was done; refused, the page again as
    things are now, with why."""
    if not may_apply_macros(request.user):
        raise PermissionDenied
    ticket = object_or_404(Ticket, object_id)
    here = reverse("admin:support_ticket_change", args=[ticket.pk])
    refusal = ""
    if request.method == "POST":
        form = ApplyForm(request.POST)
        macro = (
            Macro.objects.filter(pk=form.cleaned_data["macro"]).first() if form.is_valid() else None
        )
        if macro is None:
            report_refusal(request, "There is no such macro; choose one on the ticket.")
            return HttpResponseRedirect(f"{here}#composer")
        try:
            done = macros.macro_apply(
                ticket=ticket,
                macro=macro,
                by=request.user,
                previewed=form.cleaned_data["previewed"],
            )
        except macros.MacroError as error:
            refusal = str(error)
        else:
            messages.success(
                request,
                format_html(
                    'On <a class="od-message-link" href="{}">#{}</a>: “{}” applied. {}',
                    here,
                    ticket.pk,
                    macro.name,
                    " ".join(done),
                ),
            )
            return HttpResponseRedirect(f"{here}#conversation")
        macro_id = macro.pk
    else:
        macro_id = pk_or_none(Macro, request.GET.get("macro"))
    preview = (
        macros.macro_preview_for(ticket_id=ticket.pk, macro_id=macro_id, by=request.user)
        if macro_id is not None
        else None
    )
    if preview is None:
        messages.error(request, "There is no such macro; choose one on the ticket.")
        return HttpResponseRedirect(f"{here}#composer")
    context = {
        **admin.site.each_context(request),
        "opts": Ticket._meta,
        "title": f"Apply “{preview.macro.name}”",
        "preview": preview,
        "form": ApplyForm(initial={"macro": preview.macro.pk, "previewed": preview.token}),
        "refusal": refusal,
        "ticket_url": here,
    }
    request.current_app = admin.site.name
    return TemplateResponse(request, "support/macro_apply.html", context)
