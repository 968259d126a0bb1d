"""Account migration (docs/product.md#entitlements): move a customer's contacts,
entitlements and open tickets to another customer, previewed first, all or nothing.

It spans customers and support, so it lives above both apps.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models.functions import Lower

from audit.bulk import update_with_history
from audit.previews import PreviewState, preview_changes, stale_message
from customers.models import Contact, Customer, Entitlement
from support.models import Ticket

MIGRATE = "customers.migrate_account"


class MigrationError(Exception):
    """A migration that may not run; the message says why. Nothing was moved."""


class MigrationPreviewChanged(MigrationError):
    """What moves changed since the page showed it. Nothing was moved."""


@dataclass(frozen=True)
class MigrationPreview:
    """Exactly what a migration would move, and why it would refuse to run."""

    source: Customer
    target: Customer
    contacts: list[Contact]
    entitlements: list[Entitlement]
    open_tickets: list[Ticket]
    # Contacts whose email the target already has: moving them would duplicate a person.
    conflicts: list[Contact]
    # The source's primary contact stays a contact but not the primary: the target has one.
    demoted_primary: Contact | None

    @property
    def problems(self) -> list[str]:
        problems = []
        if self.source.pk == self.target.pk:
            problems.append("A customer cannot be migrated into itself.")
        if self.target.status == Customer.Status.CHURNED:
            problems.append(f"{self.target} has churned; pick a live customer.")
        problems += [
            f"{self.target} already has a contact {c.email}; merge or remove one first."
            for c in self.conflicts
        ]
        return problems


def account_migration_preview(
    *, source: Customer, target: Customer, lock: bool = False
) -> MigrationPreview:
    """What ``account_migrate`` would do right now; changes nothing. ``lock``: inside
    the migration's transaction, the rows that move are locked (in id order) as read."""

    def rows(queryset):
        # Locked without joins: PostgreSQL re-checks a row changed meanwhile against the
        # joined rows it read first (see customers.entitlements_lock_as_previewed).
        return list(queryset.select_related(None).select_for_update() if lock else queryset)

    contacts = rows(source.contacts.order_by("pk"))
    target_emails = set(target.contacts.annotate(e=Lower("email")).values_list("e", flat=True))
    target_has_primary = target.contacts.filter(is_primary=True).exists()
    return MigrationPreview(
        source=source,
        target=target,
        contacts=contacts,
        entitlements=rows(source.entitlements.select_related("product").order_by("pk")),
        open_tickets=rows(source.tickets.filter(status__in=Ticket.OPEN_STATES).order_by("pk")),
        conflicts=[c for c in contacts if c.email.lower() in target_emails],
        demoted_primary=next((c for c in contacts if c.is_primary and target_has_primary), None),
    )


def migration_preview_state(preview: MigrationPreview) -> PreviewState:
    """What the migration page shows, for its confirm form's token (``audit.previews``):
    each group of rows as one item, so the token stays small for a customer of thousands
    of entitlements."""
    source, target = preview.source, preview.target
    return (
        PreviewState()
        .add("source", str(source), pk=source.pk, status=source.status)
        .add("target", str(target), pk=target.pk, status=target.status)
        .group(
            "contacts",
            f"the contacts of {source}",
            [
                (c.pk, c.customer_id, c.name, c.email, c.role, c.is_primary)
                for c in preview.contacts
            ],
        )
        .group(
            "entitlements",
            f"the entitlements of {source}",
            [
                (e.pk, e.customer_id, e.product_id, e.code, e.state, e.assignee_email)
                for e in preview.entitlements
            ],
        )
        .group(
            "tickets",
            f"the open tickets of {source}",
            [(t.pk, t.customer_id, t.status, t.priority) for t in preview.open_tickets],
        )
        .group(
            "target contacts",
            f"the contacts {target} already has",
            [("conflict", c.pk) for c in preview.conflicts]
            + ([("demoted", preview.demoted_primary.pk)] if preview.demoted_primary else []),
        )
    )


@transaction.atomic
def account_migrate(
    *,
    source: Customer,
    target: Customer,
    reason: str,
    by: AbstractBaseUser | None = None,
    previewed: str | None = None,
) -> MigrationPreview:
    """Move everything the preview lists in one transaction; any problem moves nothing.

    Both customers are locked first (in id order), then the rows that move, so the
    preview that decides is the one of the rows being moved. ``previewed``: the token
    of the page that was confirmed (``migration_preview_state``); anything that changed
    since it was shown refuses the migration."""
    if by is not None and not by.has_perm(MIGRATE):
        raise MigrationError("You may not do this: it needs the permission " + MIGRATE)
    reason = (reason or "").strip()
    if not reason:
        raise MigrationError("Give a reason: it is kept in every moved record's history.")
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update()
        .filter(pk__in=[source.pk, target.pk])
        .order_by("pk")
    }
    source, target = locked.get(source.pk, source), locked.get(target.pk, target)
    preview = account_migration_preview(source=source, target=target, lock=True)
    if preview.problems:
        raise MigrationError("Nothing moved. " + " ".join(preview.problems))
    if previewed is not None:
        changes = preview_changes(previewed, migration_preview_state(preview))
        if changes:
            raise MigrationPreviewChanged("Nothing moved. " + stale_message(changes))
    why = f"account migration from {source} to {target}: {reason}"
    if preview.demoted_primary:
        update_with_history(
            Contact.objects.filter(pk=preview.demoted_primary.pk), reason=why, is_primary=False
        )
    for model, rows in [
        (Contact, preview.contacts),
        (Entitlement, preview.entitlements),
        (Ticket, preview.open_tickets),
    ]:
        update_with_history(
            model.objects.filter(pk__in=[row.pk for row in rows]),
            reason=why,
            customer_id=target.pk,
        )
    return preview
