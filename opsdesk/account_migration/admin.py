"""Account migration in the admin: "Migrate account…" on a customer's page.

Pick the target customer, see exactly what will move (``account_migration_preview``:
contacts, entitlements by product and state, open tickets, the primary contact that
stops being primary, and what blocks it), give a reason, confirm: ``account_migrate``
moves it all in one transaction or nothing. Ops leads only (customers.migrate_account).

It spans customers and support, so it lives in opsdesk, above both apps.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from unfold.decorators import action

from audit.previews import preview_token
from customers.admin_workflows import (
    TargetForm,
    WorkflowForm,
    counted,
    done_for_context,
    done_for_text,
)
from customers.models import Customer, Entitlement
from kit.params import object_or_404
from opsdesk.account_migration.services import (
    MIGRATE,
    MigrationError,
    MigrationPreview,
    account_migrate,
    account_migration_preview,
    migration_preview_state,
)


class MigrationForm(WorkflowForm):
    # Chosen on the first step; carried so the run is the migration that was previewed.
    target = forms.ModelChoiceField(queryset=Customer.objects.all(), widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        reason.help_text = "Kept in the history of every record that moves."
        reason.error_messages["required"] = (
            "Give a reason: it is kept in the history of every record that moves."
        )


@dataclass(frozen=True)
class ProductCounts:
    product: str
    by_state: list[int]  # in the order of Entitlement.State
    total: int


def entitlement_counts(preview: MigrationPreview) -> list[ProductCounts]:
    """How many of the moving entitlements each product has, per state."""
    counted = Counter((e.product.name, e.state) for e in preview.entitlements)
    products = sorted({product for product, _ in counted})
    return [
        ProductCounts(
            product=product,
            by_state=[counted[product, state] for state in Entitlement.State.values],
            total=sum(counted[product, state] for state in Entitlement.State.values),
        )
        for product in products
    ]


def migration_summary(preview: MigrationPreview) -> str:
    moved = (
        f"{counted(len(preview.contacts), 'contact')}, "
        f"{counted(len(preview.entitlements), 'entitlement')} "
        f"and {counted(len(preview.open_tickets), 'open ticket')}"
    )
    text = f"Migrated {preview.source} into {preview.target}: {moved} moved."
    if preview.demoted_primary:
        text += f" {preview.demoted_primary.name} stays a contact but is no longer the primary one."
    return text


class AccountMigrationMixin:
    """For the registered customer admin: the "Migrate account…" detail action."""

    migration_template = "opsdesk/account_migration.html"
    actions_detail = ["migrate_account"]

    @action(description="Migrate account…", url_path="migrate", permissions=["migrate_account"])
    def migrate_account(self, request, object_id):
        return self.account_migration_view(request, object_id)

    def has_migrate_account_permission(self, request, object_id=None) -> bool:
        # Named, not dotted: unfold's system check would look a dotted permission up in
        # the database, which fails on a fresh database before migrate.
        return request.user.has_perm(MIGRATE)

    def account_migration_view(self, request, object_id: str):
        """GET without a target: pick one. GET with ``?target=``: the preview and the
        confirm form. POST: run it."""
        if not request.user.has_perm(MIGRATE):
            raise PermissionDenied
        source = object_or_404(Customer, object_id, self.get_queryset(request))

        target_form = TargetForm(
            request.GET if "target" in request.GET else None,
            admin_site=self.admin_site,
            label="Migrate into",
        )
        refused = False  # by the service: the page then confirms what it shows now
        if request.method == "POST":
            form = MigrationForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    with done_for_context(data["done_for"]):
                        preview = account_migrate(
                            source=source,
                            target=data["target"],
                            reason=data["reason"],
                            by=request.user,
                            previewed=data["previewed"],
                        )
                except MigrationError as error:
                    form.add_error(None, str(error))
                    refused = True
                else:
                    self.message_user(
                        request,
                        migration_summary(preview) + done_for_text(data["done_for"]),
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse(
                            f"{self.admin_site.name}:customers_customer_change",
                            args=[data["target"].pk],
                        )
                    )
            target = form.cleaned_data.get("target")
        else:
            target = target_form.cleaned_data["target"] if target_form.is_valid() else None
            if target is not None and target.pk == source.pk:
                target_form.add_error("target", "Pick another customer than the one migrated.")
                target = None
            form = MigrationForm(initial={"target": target} if target else {})

        preview = None
        if target is not None:
            preview = account_migration_preview(source=source, target=target)
            token = preview_token(migration_preview_state(preview))
            if refused:
                form.data = form.data.copy()
                form.data["previewed"] = token
            elif not form.is_bound:
                form.initial["previewed"] = token
        conflicts = {c.pk for c in preview.conflicts} if preview else set()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Migrate {source}",
            "source": source,
            "target": target,
            "target_form": target_form,
            "preview": preview,
            "conflicts": conflicts,
            "counts": entitlement_counts(preview) if preview else [],
            "states": Entitlement.State.choices,
            "form": form,
            "back": reverse(f"{self.admin_site.name}:customers_customer_change", args=[source.pk]),
            "media": self.media + target_form.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.migration_template, context)
