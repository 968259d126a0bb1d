"""The staff roles: the group names every layer refers to, what each group may do, and
who works every customer.

``GRANTS`` is the whole table of model permissions per group, and ``roles_sync`` makes the
database's groups equal to it. The rules that stop at one customer live with the data they
guard (``customers.access``, ``onboarding.access``).

To change a grant: edit ``GRANTS`` and add a migration to ``opsdesk`` whose ``RunPython``
calls ``roles_sync`` (as ``opsdesk.0008_roles_sync`` does), depending on the latest
migration of every app it grants permissions of, and set its ``GRANTS_DIGEST`` to
``grants_digest()``; ``tests/opsdesk/test_roles.py`` fails while the latest sync
migration's digest is not the table's, so a database already migrated cannot miss the
change. The tests' personas get their groups from ``roles_sync`` too.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

SUPPORT = "Support"
ACCOUNT_MANAGERS = "Account managers"
OPS_LEADS = "Ops leads"

# Every role reads what staff work with (customer records, tickets, cases, webhook
# events, triage rules, digests, reconciliation runs, onboarding) and marks onboarding
# tasks done; nobody but a superuser deletes a record (docs/product.md#roles).
_EVERY_ROLE = frozenset(
    {
        "customers.view_customer",
        "customers.view_contact",
        "customers.view_contract",
        "customers.view_product",
        "customers.view_order",
        "customers.view_entitlement",
        "customers.view_usagedaily",
        "support.view_ticket",
        "support.view_tag",
        "support.view_case",
        # Problems: one error at several customers (docs/product.md#problems).
        "support.view_problem",
        "support.view_webhookevent",
        "support.view_triagerule",
        "support.view_triagecondition",
        # Support's macros (docs/product.md#macros): every role reads them.
        "support.view_macro",
        # The service levels tickets follow (docs/product.md#service-levels).
        "support.view_slapolicy",
        "support.view_slatarget",
        "support.view_slaholiday",
        "billing.view_invoice",
        # Each import of the billing export: what it did, or why it refused rows.
        "billing.view_invoiceimport",
        "billing.view_reconciliationrun",
        "opsdesk.view_digestdelivery",
        "onboarding.view_checklisttemplate",
        "onboarding.view_templateitem",
        "onboarding.view_checklist",
        "onboarding.view_checklisttask",
        "onboarding.change_checklisttask",
        # Saved views of the queue and the inbox: everyone keeps their own (sharing needs
        # the page's work permission, docs/product.md#saved-views).
        "opsdesk.view_savedview",
        "opsdesk.add_savedview",
        "opsdesk.change_savedview",
        "opsdesk.delete_savedview",
        # Customers' health signals (docs/product.md#health-signals): everyone reads them.
        "opsdesk.view_healthsignal",
    }
)

GRANTS: dict[str, frozenset[str]] = {
    # Works tickets; edits the triage rules (editable in the admin, no deploy needed).
    SUPPORT: _EVERY_ROLE
    | {
        "support.add_ticket",
        "support.change_ticket",
        # Works problems: links tickets, sends an update to their requesters, solves them.
        "support.change_problem",
        # The email that reaches support: read it, its attachments, retry a failed one.
        "support.view_inboundemail",
        "support.change_inboundemail",
        "support.view_emailattachment",
        "support.add_triagerule",
        "support.change_triagerule",
        "support.delete_triagerule",
        "support.add_triagecondition",
        "support.change_triagecondition",
        "support.delete_triagecondition",
        # Writes the macros it applies to tickets (retired by unticking "active").
        "support.add_macro",
        "support.change_macro",
    },
    # Edits their customers, contacts and contracts (the row rule in customers.access
    # stops them at the customers they manage).
    ACCOUNT_MANAGERS: _EVERY_ROLE
    | {
        "customers.change_customer",
        "customers.add_contact",
        "customers.change_contact",
        "customers.add_contract",
        "customers.change_contract",
        # Acknowledges and snoozes the signals of the customers they manage.
        "opsdesk.change_healthsignal",
    },
    # Runs and resolves the exception workflows and reconciliation, transfers
    # entitlements, migrates accounts, resends digests, edits onboarding templates and the
    # service levels (a policy's targets stay one per priority; a policy is deleted by a
    # superuser only, and only while no ticket followed it).
    OPS_LEADS: _EVERY_ROLE
    | {
        # Works problems as support does (their update and solve reach the tickets).
        "support.change_problem",
        # Writes support's macros with them (applying one is working a ticket).
        "support.add_macro",
        "support.change_macro",
        "support.add_slapolicy",
        "support.change_slapolicy",
        "support.add_slatarget",
        "support.change_slatarget",
        "support.add_slaholiday",
        "support.change_slaholiday",
        "support.delete_slaholiday",
        "support.add_case",
        "support.change_case",
        "support.change_webhookevent",
        "support.view_inboundemail",
        "support.view_emailattachment",
        "customers.change_order",
        "customers.change_entitlement",
        "customers.transfer_entitlement",
        "customers.migrate_account",
        "billing.add_invoice",
        "billing.change_invoice",
        "billing.add_reconciliationrun",
        "opsdesk.change_digestdelivery",
        "onboarding.add_checklisttemplate",
        "onboarding.change_checklisttemplate",
        "onboarding.delete_checklisttemplate",
        "onboarding.add_templateitem",
        "onboarding.change_templateitem",
        "onboarding.delete_templateitem",
        # Edits and deletes anyone's shared saved views (and shares views of both pages).
        "opsdesk.manage_shared_savedview",
        # The operations scorecard (docs/product.md#scorecard).
        "opsdesk.view_scorecard",
        # Acknowledges and snoozes any customer's signals; reads the daily sweeps' log.
        "opsdesk.change_healthsignal",
        "opsdesk.handle_any_healthsignal",
        "opsdesk.view_healthsweep",
        # Resolves a CRM contract waiting for its account: links it to a customer, or
        # creates the customer (docs/product.md#crm).
        "customers.link_crm_account",
    },
}


class GroupChange(NamedTuple):
    """What ``roles_sync`` did to one group: created it, and which permissions it added
    and removed (as ``app_label.codename``)."""

    created: bool
    added: frozenset[str]
    removed: frozenset[str]


def grants_digest() -> str:
    """A short fingerprint of ``GRANTS``, which each sync migration records so that a
    test notices a table changed without a migration to apply it."""
    lines = sorted(f"{group}\t{perm}" for group, perms in GRANTS.items() for perm in perms)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def roles_sync(apps=None, using: str = "default") -> dict[str, GroupChange]:
    """Make the groups of ``GRANTS`` exist with exactly its permissions: missing groups
    are created, missing permissions added, any other permission of those groups removed.
    Groups the table does not name are left alone. Idempotent: a second run writes
    nothing (and reads in three queries). Returns what changed by group name, empty when
    nothing did.

    ``apps`` is a migration's historical registry, or None for the installed apps. Inside
    a migration the permissions may not exist yet (Django creates them on post_migrate,
    after the last migration), so the missing ones are created first. A permission the
    models at that point of the history do not define (a model or custom permission a
    later migration adds) is neither added nor removed there: the sync migration added
    with that grant, later in the history, grants it. With the installed apps every entry
    must exist, so a misspelt one fails loudly.
    """
    from django.apps import apps as global_apps
    from django.db import transaction

    historical = apps is not None and apps is not global_apps
    apps = global_apps if apps is None else apps
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = set().union(*GRANTS.values())

    with transaction.atomic(using=using):
        found = _permission_ids(Permission, using, wanted)
        if wanted - found.keys():
            _create_permissions(apps, using, {_app_label(p) for p in wanted - found.keys()})
            found = _permission_ids(Permission, using, wanted)
        missing = wanted - found.keys()
        if missing and not historical:
            raise LookupError(f"kit.roles.GRANTS names unknown permissions: {sorted(missing)}")

        groups = {g.name: g for g in Group.objects.using(using).filter(name__in=GRANTS)}
        have: dict[str, dict[int, str]] = {name: {} for name in GRANTS}
        rows = (
            Group.permissions.through.objects.using(using)
            .filter(group__name__in=GRANTS)
            .values_list(
                "group__name",
                "permission_id",
                "permission__content_type__app_label",
                "permission__codename",
            )
        )
        for name, pk, app_label, codename in rows:
            have[name][pk] = f"{app_label}.{codename}"

        changes = {}
        for name, perms in GRANTS.items():
            created = name not in groups
            group = Group.objects.using(using).create(name=name) if created else groups[name]
            add = {found[p]: p for p in perms if p in found and found[p] not in have[name]}
            remove = {pk: perm for pk, perm in have[name].items() if perm not in perms}
            if add:
                group.permissions.add(*add)
            if remove:
                group.permissions.remove(*remove)
            if created or add or remove:
                changes[name] = GroupChange(
                    created=created,
                    added=frozenset(add.values()),
                    removed=frozenset(remove.values()),
                )
    return changes


def _app_label(permission: str) -> str:
    return permission.split(".", 1)[0]


def _permission_ids(Permission, using: str, wanted: set[str]) -> dict[str, int]:
    """The ids of those of the ``wanted`` permissions (``app_label.codename``) that exist."""
    rows = (
        Permission.objects.using(using)
        .filter(
            content_type__app_label__in={_app_label(p) for p in wanted},
            codename__in={p.split(".", 1)[1] for p in wanted},
        )
        .values_list("content_type__app_label", "codename", "pk")
    )
    ids = {f"{app_label}.{codename}": pk for app_label, codename, pk in rows}
    return {perm: pk for perm, pk in ids.items() if perm in wanted}


def _create_permissions(apps, using: str, app_labels: set[str]) -> None:
    from django.contrib.auth.management import create_permissions

    for app_label in sorted(app_labels):
        try:
            app_config = apps.get_app_config(app_label)
        except LookupError:  # the app has no models yet at this point of the history
            continue
        # create_permissions skips an app without a models module, which no app of a
        # migration's historical registry has (its AppConfigStub lacks the attribute).
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        try:
            create_permissions(app_config, verbosity=0, using=using, apps=apps)
        finally:
            app_config.models_module = models_module


def user_works_every_customer(user) -> bool:
    """Support and ops leads work every customer's tickets, cases and onboarding tasks;
    an account manager's rights stop at the customers they manage."""
    if not user.is_active:
        return False
    if user.is_superuser:
        return True
    if not hasattr(user, "_works_every_customer"):  # once per request's user
        user._works_every_customer = user.groups.filter(name__in=[SUPPORT, OPS_LEADS]).exists()
    return user._works_every_customer
