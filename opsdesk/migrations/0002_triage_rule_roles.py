"""Support edits the triage rules (PRODUCT.md: editable in the admin, no deploy needed);
everyone else who reads tickets may read them."""

from django.db import migrations

GRANTS = {
    "Support": ["view", "add", "change", "delete"],
    "Account managers": ["view"],
    "Ops leads": ["view"],
}
MODELS = ["triagerule", "triagecondition"]


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    support = apps.get_app_config("support")
    models_module = getattr(support, "models_module", None)
    support.models_module = models_module or True
    create_permissions(support, apps=apps, verbosity=0)
    support.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, actions in GRANTS.items():
        group = Group.objects.get(name=name)
        group.permissions.add(
            *Permission.objects.filter(
                content_type__app_label="support",
                codename__in=[f"{action}_{model}" for action in actions for model in MODELS],
            )
        )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    codenames = [f"{action}_{model}" for action in GRANTS["Support"] for model in MODELS]
    for group in Group.objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="support", codename__in=codenames)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("opsdesk", "0001_roles"),
        ("support", "0004_triage_rules"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
