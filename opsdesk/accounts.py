"""Account migration (PRODUCT.md "Entitlements"): move a customer's contacts,
entitlements and open tickets to another customer, previewed first, all or nothing.

It spans customers and support, so it lives above both apps.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models.functions import Lower

from audit.bulk import update_with_history
from customers.models import Contact, Customer, Entitlement
from support.models import Ticket

MIGRATE = "customers.migrate_account"


class MigrationError(Exception):
    """A migration that may not run; the message says why. Nothing was moved."""


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


def account_migration_preview(*, source: Customer, target: Customer) -> MigrationPreview:
    """What ``account_migrate`` would do right now; changes nothing."""
    contacts = list(source.contacts.order_by("pk"))
    target_emails = set(target.contacts.annotate(e=Lower("email")).values_list("e", flat=True))
    target_has_primary = target.contacts.filter(is_primary=True).exists()
    return MigrationPreview(
        source=source,
        target=target,
        contacts=contacts,
        entitlements=list(source.entitlements.select_related("product").order_by("pk")),
        open_tickets=list(source.tickets.filter(status__in=Ticket.OPEN_STATES).order_by("pk")),
        conflicts=[c for c in contacts if c.email.lower() in target_emails],
        demoted_primary=next((c for c in contacts if c.is_primary and target_has_primary), None),
    )


@transaction.atomic
def account_migrate(
    *, source: Customer, target: Customer, reason: str, by: AbstractBaseUser | None = None
) -> MigrationPreview:
    """Move everything the preview lists in one transaction; any problem moves nothing.

    Both customers are locked first (in id order), so the preview that decides is the
    one of the rows being moved."""
    if by is not None and not by.has_perm(MIGRATE):
        raise MigrationError("You may not do this: it needs the permission " + MIGRATE)
    reason = (reason or "").strip()
    if not reason:
        raise MigrationError("Give a reason: it is kept in every moved record's history.")
    list(Customer.objects.select_for_update().filter(pk__in=[source.pk, target.pk]).order_by("pk"))
    preview = account_migration_preview(source=source, target=target)
    if preview.problems:
        raise MigrationError("Nothing moved. " + " ".join(preview.problems))
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
