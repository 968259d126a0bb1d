"""The entitlement workflows in the admin (docs/product.md#entitlements): assign, reassign,
revoke, reissue code and transfer, each through a confirmation page.

GET lists exactly the selected entitlements and what will happen to each; POST runs the
service of ``customers.entitlements`` with the reason typed there. The services decide
(state, permission, reason) and change nothing when they refuse; these pages ask, show
the refusal on the form with what was typed, and report what changed.

Reached from the entitlement list's actions (the selection travels in the URL as
``?ids=``) and from an entitlement's own page (unfold detail actions, offered only when
its state and the user's permissions allow them).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from unfold.decorators import action
from unfold.widgets import (
    UnfoldAdminEmailInputWidget,
    UnfoldAdminTextareaWidget,
    UnfoldAdminTextInputWidget,
)

from audit.admin import SafeAutocompleteSelect
from audit.context import acting_for
from audit.previews import preview_token
from customers import entitlements as services
from customers.entitlements import (
    ENTITLEMENT_ACTIONS,
    EntitlementError,
    entitlement_action_allowed,
)
from customers.models import Customer, Entitlement
from kit.admin import back_url, report_refusal
from kit.params import object_or_404

State = Entitlement.State
# A selection travels in the URL; more than this is a job for a script, not a page.
MAX_SELECTED = 100


# --- "Done for": the ticket or case a change is made for ------------------------------

# customers/ imports no other app (docs/architecture.md#layers): tickets and
# cases are found through the app registry by label, the same labels history_for uses.
DONE_FOR_MODELS = {"ticket": "support.Ticket", "case": "support.Case"}
DONE_FOR_PATTERN = re.compile(r"^(?P<kind>ticket|case)\s*#?\s*(?P<number>\d+)$", re.IGNORECASE)


class DoneForField(forms.CharField):
    """Optional "ticket 123" or "case 45"; cleans to that ticket or case (or None)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", "Done for ticket or case")
        kwargs.setdefault(
            "help_text",
            "Optional. The change is linked to it in every history row it writes.",
        )
        kwargs.setdefault(
            "widget", UnfoldAdminTextInputWidget(attrs={"placeholder": "ticket 123 or case 45"})
        )
        super().__init__(max_length=40, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        match = DONE_FOR_PATTERN.match(value.strip())
        if not match:
            raise forms.ValidationError(
                f"“{value}” names no ticket or case: type “ticket 123” or “case 45”."
            )
        kind, number = match["kind"].lower(), int(match["number"])
        model = apps.get_model(DONE_FOR_MODELS[kind])
        found = model._default_manager.filter(pk=number).first()
        if found is None:
            raise forms.ValidationError(f"There is no {kind} #{number}.")
        return found


def done_for_context(record: Any) -> contextlib.AbstractContextManager:
    """Link every history row written inside to ``record`` when one was given."""
    return acting_for(record) if record is not None else contextlib.nullcontext()


def done_for_text(record: Any) -> str:
    return f" (for {record._meta.model_name} #{record.pk})" if record is not None else ""


# --- Forms ----------------------------------------------------------------------------


class WorkflowForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 3}),
        help_text="Kept in the history of every entitlement this changes.",
        error_messages={"required": "Give a reason: it is kept in the entitlement's history."},
    )
    done_for = DoneForField()
    # What the page showed (audit.previews): the run applies to exactly that or refuses.
    previewed = forms.CharField(widget=forms.HiddenInput, required=False)


class EmailWorkflowForm(WorkflowForm):
    email = forms.EmailField(
        label="Assign to (email)",
        widget=UnfoldAdminEmailInputWidget(),
        error_messages={"required": "Give the email of the person who gets the seat."},
    )
    field_order = ["email", "reason", "done_for"]


class TransferForm(WorkflowForm):
    # Chosen on the preview step (TargetForm); carried so the run moves to the previewed one.
    target = forms.ModelChoiceField(
        queryset=Customer.objects.all(),
        widget=forms.HiddenInput,
        error_messages={
            "required": "Pick the customer to move them to.",
            "invalid_choice": "That customer does not exist; pick another.",
        },
    )


class TargetForm(forms.Form):
    """Pick a customer with the admin's searchable select (the customer search fields)."""

    def __init__(self, *args, admin_site, label: str = "Target customer", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"] = forms.ModelChoiceField(
            queryset=Customer.objects.all(),
            label=label,
            # Safe: renders a typed ``?target=abc`` as no choice (it was a 500).
            widget=SafeAutocompleteSelect(Entitlement._meta.get_field("customer"), admin_site),
            error_messages={
                "required": "Pick a customer.",
                "invalid_choice": "That customer does not exist; pick another.",
            },
        )


class SelectionForm(forms.Form):
    ids = forms.ModelMultipleChoiceField(
        queryset=Entitlement.objects.select_related("customer", "product").order_by("pk"),
        error_messages={
            "required": "Select at least one entitlement.",
            "invalid_choice": "Entitlement %(value)s does not exist (any more).",
            "invalid_pk_value": "“%(pk)s” is not an entitlement id.",
        },
    )


# --- The workflows --------------------------------------------------------------------


@dataclass(frozen=True)
class Workflow:
    key: str  # in URLs and action names; a key of ENTITLEMENT_ACTIONS
    title: str
    permission: str
    verb: str  # "revoked": "only issued entitlements can be revoked"
    button: str
    form_class: type[WorkflowForm]
    outcome: Callable[[Entitlement, dict], str]
    run: Callable[..., str]
    one_at_a_time: bool = False

    @property
    def states(self) -> tuple[str, ...]:
        """The states it applies to (``ENTITLEMENT_ACTIONS``), to say up front which rows
        it would refuse and to offer it on an entitlement's page; the service checks
        again on the locked row and is what decides."""
        return ENTITLEMENT_ACTIONS[self.key]


def _codes(entitlements) -> str:
    return ", ".join(e.code for e in entitlements)


def counted(n: int, noun: str) -> str:
    """``counted(1, "entitlement")`` -> "1 entitlement"; 2 -> "2 entitlements"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _run_assign(*, entitlements, data, by) -> str:
    [entitlement] = entitlements
    entitlement = services.entitlement_assign(
        entitlement=entitlement, email=data["email"], reason=data["reason"], by=by
    )
    return f"{entitlement.code} is now assigned to {entitlement.assignee_email}."


def _run_reassign(*, entitlements, data, by) -> str:
    [entitlement] = entitlements
    before = entitlement.assignee_email
    entitlement = services.entitlement_reassign(
        entitlement=entitlement, email=data["email"], reason=data["reason"], by=by
    )
    return f"{entitlement.code} is now assigned to {entitlement.assignee_email} (was {before})."


def _run_revoke(*, entitlements, data, by) -> str:
    # All or nothing: the first refusal rolls back the ones revoked before it.
    with transaction.atomic():
        for entitlement in entitlements:
            services.entitlement_revoke(entitlement=entitlement, reason=data["reason"], by=by)
    return f"Revoked {counted(len(entitlements), 'entitlement')}: {_codes(entitlements)}."


def _run_reissue(*, entitlements, data, by) -> str:
    old = [e.code for e in entitlements]
    with transaction.atomic():
        new = [
            services.entitlement_reissue_code(entitlement=e, reason=data["reason"], by=by).code
            for e in entitlements
        ]
    pairs = ", ".join(f"{a} → {b}" for a, b in zip(old, new, strict=True))
    old_ones = "the old one no longer works" if len(new) == 1 else "the old ones no longer work"
    return f"Reissued {counted(len(new), 'code')}; {old_ones}: {pairs}."


def _run_transfer(*, entitlements, data, by) -> str:
    target = data["target"]
    moved = services.entitlements_transfer(
        entitlements=entitlements, target=target, reason=data["reason"], by=by
    )
    return f"Moved {counted(moved, 'entitlement')} to {target}: {_codes(entitlements)}."


def _email_or_placeholder(data: dict) -> str:
    return data.get("email") or "the email below"


WORKFLOWS = {
    workflow.key: workflow
    for workflow in [
        Workflow(
            key="assign",
            title="Assign an entitlement",
            permission=services.CHANGE,
            verb="assigned",
            button="Assign",
            form_class=EmailWorkflowForm,
            outcome=lambda e, data: f"issued → assigned to {_email_or_placeholder(data)}",
            run=_run_assign,
            one_at_a_time=True,
        ),
        Workflow(
            key="reassign",
            title="Reassign an entitlement",
            permission=services.CHANGE,
            verb="reassigned",
            button="Reassign",
            form_class=EmailWorkflowForm,
            outcome=lambda e, data: (
                f"assigned to {e.assignee_email} → {_email_or_placeholder(data)}"
            ),
            run=_run_reassign,
            one_at_a_time=True,
        ),
        Workflow(
            key="revoke",
            title="Revoke entitlements",
            permission=services.CHANGE,
            verb="revoked",
            button="Revoke",
            form_class=WorkflowForm,
            outcome=lambda e, data: (
                f"{e.get_state_display().lower()} → revoked; {e.code} stops working"
            ),
            run=_run_revoke,
        ),
        Workflow(
            key="reissue",
            title="Reissue codes",
            permission=services.CHANGE,
            verb="given a new code",
            button="Reissue code",
            form_class=WorkflowForm,
            outcome=lambda e, data: f"gets a new code; {e.code} stops working",
            run=_run_reissue,
        ),
        Workflow(
            key="transfer",
            title="Transfer entitlements to another customer",
            permission=services.TRANSFER,
            verb="transferred",
            button="Transfer",
            form_class=TransferForm,
            outcome=lambda e, data: f"moves from {e.customer} to {data['target']}",
            run=_run_transfer,
        ),
    ]
}


@dataclass(frozen=True)
class Row:
    entitlement: Entitlement
    outcome: str
    refused: bool = False


def _rows(workflow: Workflow, entitlements: list[Entitlement], data: dict) -> list[Row]:
    """What will happen to each selected entitlement, or why it would be refused."""
    if workflow.key == "transfer":
        if data.get("target") is None:
            return [Row(e, "moves to the customer you pick") for e in entitlements]
        preview = services.entitlements_transfer_preview(
            entitlements=entitlements, target=data["target"]
        )
        refused = {e.pk: why for e, why in preview.refused}
        return [
            Row(e, f"stays: it {refused[e.pk]}", refused=True)
            if e.pk in refused
            else Row(e, workflow.outcome(e, data))
            for e in entitlements
        ]
    return [
        Row(e, workflow.outcome(e, data))
        if entitlement_action_allowed(e, workflow.key)
        else Row(
            e,
            f"cannot be {workflow.verb}: it is {e.get_state_display().lower()}",
            refused=True,
        )
        for e in entitlements
    ]


def _previewed(entitlements: list[Entitlement], target: Customer | None) -> str:
    """The token of what the page shows, for its confirm form to carry."""
    state = services.entitlements_preview_state(entitlements=entitlements, target=target)
    return preview_token(state)


def _reread(entitlements: list[Entitlement]) -> list[Entitlement]:
    pks = [e.pk for e in entitlements]
    fresh = Entitlement.objects.select_related("customer", "product").in_bulk(pks)
    return [fresh[pk] for pk in pks if pk in fresh]


def _states_text(workflow: Workflow) -> str:
    labels = [State(s).label.lower() for s in workflow.states]
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} or {labels[-1]}"


# --- The admin ------------------------------------------------------------------------


def _list_action(key: str, description: str, permission: str):
    def start(model_admin, request, queryset):
        return model_admin.workflow_start(request, queryset, key)

    start.__name__ = f"{key}_selected"
    return admin.action(description=description, permissions=[permission])(start)


def _detail_action(key: str, description: str, permission: str):
    def run(model_admin, request, object_id):
        return model_admin.workflow_view(request, key, object_id=object_id)

    run.__name__ = f"{key}_detail"
    return action(description=description, url_path=key, permissions=[permission])(run)


class EntitlementWorkflowsMixin:
    """For ``EntitlementAdmin``: the workflows as list actions and detail actions."""

    workflow_template = "customers/entitlement_workflow.html"

    assign_selected = _list_action("assign", "Assign…", "change")
    reassign_selected = _list_action("reassign", "Reassign…", "change")
    revoke_selected = _list_action("revoke", "Revoke…", "change")
    reissue_selected = _list_action("reissue", "Reissue code…", "change")
    transfer_selected = _list_action("transfer", "Transfer to another customer…", "transfer")
    actions = [
        "assign_selected",
        "reassign_selected",
        "revoke_selected",
        "reissue_selected",
        "transfer_selected",
    ]

    assign_detail = _detail_action("assign", "Assign…", "change_entitlement")
    reassign_detail = _detail_action("reassign", "Reassign…", "change_entitlement")
    revoke_detail = _detail_action("revoke", "Revoke…", "change_entitlement")
    reissue_detail = _detail_action("reissue", "Reissue code…", "change_entitlement")
    transfer_detail = _detail_action("transfer", "Transfer…", "transfer")
    actions_detail = [
        "assign_detail",
        "reassign_detail",
        "revoke_detail",
        "reissue_detail",
        "transfer_detail",
    ]

    # Named permissions of the actions above: unfold's system check looks a dotted
    # permission up in the database, which fails on a fresh database before migrate.
    def has_change_entitlement_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm(services.CHANGE)

    def has_transfer_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm(services.TRANSFER)

    def get_urls(self):
        return [
            path(
                "workflow/<str:key>/",
                self.admin_site.admin_view(self.workflow_view),
                name="customers_entitlement_workflow",
            ),
            *super().get_urls(),
        ]

    def get_actions_detail(self, request, object_id):
        """Only the workflows this entitlement's state allows (permissions are checked
        by unfold from each action's ``permissions``)."""
        entitlement = self.get_object(request, object_id)
        return [
            detail
            for detail in super().get_actions_detail(request, object_id)
            if detail.path not in WORKFLOWS
            or (entitlement is not None and entitlement_action_allowed(entitlement, detail.path))
        ]

    def workflow_start(self, request, queryset, key: str):
        """From the list: send the selection to the confirmation page."""
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: MAX_SELECTED + 1])
        if len(ids) > MAX_SELECTED:
            self.message_user(
                request,
                f"Select at most {MAX_SELECTED} entitlements at a time; nothing was changed.",
                messages.ERROR,
            )
            return None
        query = urlencode({"ids": ids, "back": request.get_full_path()}, doseq=True)
        url = reverse(f"{self.admin_site.name}:customers_entitlement_workflow", args=[key])
        return HttpResponseRedirect(f"{url}?{query}")

    def workflow_view(self, request, key: str, object_id: str | None = None):
        """The confirmation page of one workflow: GET shows it, POST runs it."""
        workflow = WORKFLOWS.get(key)
        if workflow is None:
            raise Http404(f"No workflow {key!r}.")
        if not request.user.has_perm(workflow.permission):
            raise PermissionDenied
        selected = self._workflow_selection(request, object_id)
        if isinstance(selected, HttpResponseRedirect):
            return selected
        entitlements, back = selected

        target_form = None
        if workflow.key == "transfer":
            target_form = TargetForm(
                request.GET if "target" in request.GET else None, admin_site=self.admin_site
            )
        if request.method == "POST":
            form = workflow.form_class(request.POST)
            if form.is_valid():
                message = self._workflow_run(request, workflow, entitlements, form)
                if message is not None:
                    self.message_user(request, message, messages.SUCCESS)
                    return HttpResponseRedirect(back)
                # Refused: the page shows them as they are now, and confirms that.
                entitlements = _reread(entitlements)
                form.data = form.data.copy()
                form.data["previewed"] = _previewed(entitlements, form.cleaned_data.get("target"))
            target = form.cleaned_data.get("target")
        else:
            target = None
            if target_form is not None and target_form.is_valid():
                target = target_form.cleaned_data["target"]
            initial = {"previewed": _previewed(entitlements, target)}
            form = workflow.form_class(initial={**initial, "target": target} if target else initial)

        typed = {"email": form["email"].value()} if "email" in form.fields else {}
        rows = _rows(workflow, entitlements, {**typed, "target": target})
        media = self.media + form.media
        if target_form is not None:
            media += target_form.media
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": workflow.title,
            "workflow": workflow,
            "rows": rows,
            "form": form,
            "target_form": target_form,
            "target": target,
            "blocked": self._blocked(workflow, entitlements, rows, target),
            "back": back,
            "on_detail": object_id is not None,
            "media": media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.workflow_template, context)

    def _workflow_selection(self, request, object_id: str | None):
        """The entitlements a page is about and where it returns to: the one of the
        entitlement page it was opened from, or the list's selection (``?ids=``)."""
        site = self.admin_site.name
        if object_id is not None:
            entitlement = object_or_404(Entitlement, object_id, self.get_queryset(request))
            back = reverse(f"{site}:customers_entitlement_change", args=[entitlement.pk])
            return [entitlement], back
        changelist = reverse(f"{site}:customers_entitlement_changelist")
        selection = SelectionForm(request.GET)
        if not selection.is_valid():
            report_refusal(request, " ".join(selection.errors.get("ids", [])))
            return HttpResponseRedirect(changelist)
        back = back_url(request, request.GET.get("back"), changelist)
        return list(selection.cleaned_data["ids"]), back

    def _workflow_run(self, request, workflow, entitlements, form) -> str | None:
        """Run it; the message of what changed, or None with the refusal on the form."""
        data = form.cleaned_data
        try:
            if workflow.one_at_a_time and len(entitlements) > 1:
                raise EntitlementError(self._one_at_a_time(workflow, entitlements))
            # One transaction: the rows locked as the preview showed them, then the run.
            with transaction.atomic(), done_for_context(data["done_for"]):
                entitlements = services.entitlements_lock_as_previewed(
                    entitlements=entitlements,
                    previewed=data["previewed"],
                    target=data.get("target"),
                )
                message = workflow.run(entitlements=entitlements, data=data, by=request.user)
        except EntitlementError as error:
            form.add_error(None, f"Nothing changed. {error}")
            return None
        return message + done_for_text(data["done_for"])

    @staticmethod
    def _one_at_a_time(workflow: Workflow, entitlements: list[Entitlement]) -> str:
        return (
            f"{workflow.button} works on one entitlement at a time, with its own email; "
            f"you selected {len(entitlements)}. Go back and select one."
        )

    def _blocked(self, workflow, entitlements, rows, target) -> list[str]:
        """Why the confirm button is not offered (the POST would be refused the same way)."""
        if workflow.one_at_a_time and len(entitlements) > 1:
            return [self._one_at_a_time(workflow, entitlements)]
        refused = [row for row in rows if row.refused]
        if workflow.key == "transfer":
            if target is None:
                return ["Pick the customer to move them to, then check the preview."]
            if refused:
                return [
                    f"Nothing can move while {len(refused)} of the selected entitlements "
                    "would be refused: a transfer moves all or none. "
                    "Go back and leave those out."
                ]
            return []
        if refused:
            many = len(entitlements) > 1
            return [
                f"Only {_states_text(workflow)} entitlements can be {workflow.verb}; "
                + (
                    f"{len(refused)} of the selected cannot. It runs for all or none: "
                    "go back and leave those out."
                    if many
                    else "this one cannot."
                )
            ]
        return []
