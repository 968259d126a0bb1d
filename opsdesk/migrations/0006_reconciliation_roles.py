"""Everyone on staff reads the reconciliation runs; ops leads start them (add)."""

from django.db import migrations

GRANTS = {
    "Support": ["view"],
    "Account managers": ["view"],
    "Ops leads": ["view", "add"],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    billing = apps.get_app_config("billing")
    models_module = getattr(billing, "models_module", None)
    billing.models_module = models_module or True
    create_permissions(billing, apps=apps, verbosity=0)
    billing.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, actions in GRANTS.items():
        Group.objects.get(name=name).permissions.add(
            *Permission.objects.filter(
                content_type__app_label="billing",
                codename__in=[f"{action}_reconciliationrun" for action in actions],
            )
        )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="billing", codename__endswith="_reconciliationrun"
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("opsdesk", "0005_history_for"),
        ("billing", "0003_reconciliation_runs"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
