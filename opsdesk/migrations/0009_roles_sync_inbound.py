"""Give the staff groups the grants of inbound email (``kit.roles.GRANTS``): support reads
the messages and their attachments and retries a failed one; ops leads read them."""

from django.db import migrations

from kit.roles import roles_sync

# The table this migration was written for (kit.roles.grants_digest()); the roles test
# fails when GRANTS changes without a newer migration carrying its new digest.
GRANTS_DIGEST = "0914948bce9926db"


def sync(apps, schema_editor):
    roles_sync(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    # The latest migration of every app GRANTS names a permission of, so each model
    # (and custom permission) it grants exists in the history at this point.
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("opsdesk", "0008_roles_sync"),
        ("billing", "0003_reconciliation_runs"),
        ("customers", "0005_search_by_whole_email"),
        ("onboarding", "0001_initial"),
        ("support", "0016_inbound_email"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
