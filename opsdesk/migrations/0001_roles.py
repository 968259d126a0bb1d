"""Create the staff groups of PRODUCT.md "Roles" with their permissions.

The matrix is frozen here, as migrations must be; a later feature that adds a permission
adds a migration of its own. Row-level rules (an account manager edits only the customers
they manage) live in ``customers.access`` and ``onboarding.access``.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CUSTOMER_RECORDS = [
    "customers.customer",
    "customers.contact",
    "customers.contract",
    "customers.product",
    "customers.order",
    "customers.entitlement",
    "customers.usagedaily",
    "support.ticket",
    "support.tag",
    "support.case",
    "support.webhookevent",
    "billing.invoice",
]

ROLES = {
    "Support": [
        *[f"{model}.view" for model in CUSTOMER_RECORDS],
        "support.ticket.add",
        "support.ticket.change",
    ],
    "Account managers": [
        *[f"{model}.view" for model in CUSTOMER_RECORDS],
        "customers.customer.change",
        "customers.contact.add",
        "customers.contact.change",
        "customers.contract.add",
        "customers.contract.change",
    ],
    "Ops leads": [
        *[f"{model}.view" for model in CUSTOMER_RECORDS],
        "support.case.add",
        "support.case.change",
        "support.webhookevent.change",
        "customers.order.change",
        "customers.entitlement.change",
        "customers.entitlement.transfer_entitlement",
        "customers.customer.migrate_account",
        "billing.invoice.add",
        "billing.invoice.change",
    ],
}


def _codename(entry):
    app_label, model, action = entry.split(".")
    if action in {"view", "add", "change", "delete"}:
        return app_label, f"{action}_{model}"
    return app_label, action


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create them now.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, entries in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = []
        for entry in entries:
            app_label, codename = _codename(entry)
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("support", "0001_initial"),
        ("billing", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
