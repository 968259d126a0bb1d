"""Account managers and everyone else on staff read the digest preview and the delivery
log; ops leads may send a failed digest again."""

from django.db import migrations

GRANTS = {
    "Support": ["view"],
    "Account managers": ["view"],
    "Ops leads": ["view", "change"],
}


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    opsdesk = apps.get_app_config("opsdesk")
    models_module = getattr(opsdesk, "models_module", None)
    opsdesk.models_module = models_module or True
    create_permissions(opsdesk, apps=apps, verbosity=0)
    opsdesk.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, actions in GRANTS.items():
        Group.objects.get(name=name).permissions.add(
            *Permission.objects.filter(
                content_type__app_label="opsdesk",
                codename__in=[f"{action}_digestdelivery" for action in actions],
            )
        )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    for group in apps.get_model("auth", "Group").objects.filter(name__in=GRANTS):
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="opsdesk", codename__endswith="_digestdelivery"
            )
        )


class Migration(migrations.Migration):
    dependencies = [("opsdesk", "0003_digest_deliveries")]

    operations = [migrations.RunPython(grant, revoke)]
