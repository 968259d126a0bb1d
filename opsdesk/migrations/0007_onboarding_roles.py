"""Onboarding: everyone on staff reads templates and checklists; account managers,
support and ops leads work the tasks (mark them done); ops leads edit the templates."""

from django.db import migrations

TEMPLATES = ["checklisttemplate", "templateitem"]
CHECKLISTS = ["checklist", "checklisttask"]
ALL = TEMPLATES + CHECKLISTS

GRANTS = {
    "Support": [*(f"view_{m}" for m in ALL), "change_checklisttask"],
    "Account managers": [*(f"view_{m}" for m in ALL), "change_checklisttask"],
    "Ops leads": [
        *(f"view_{m}" for m in ALL),
        *(f"{action}_{m}" for m in TEMPLATES for action in ("add", "change", "delete")),
        "change_checklisttask",
    ],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    onboarding = apps.get_app_config("onboarding")
    models_module = getattr(onboarding, "models_module", None)
    onboarding.models_module = models_module or True
    create_permissions(onboarding, apps=apps, verbosity=0)
    onboarding.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GRANTS.items():
        Group.objects.get(name=name).permissions.add(
            *Permission.objects.filter(content_type__app_label="onboarding", codename__in=codenames)
        )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(*Permission.objects.filter(content_type__app_label="onboarding"))


class Migration(migrations.Migration):
    dependencies = [
        ("opsdesk", "0006_reconciliation_roles"),
        ("onboarding", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
