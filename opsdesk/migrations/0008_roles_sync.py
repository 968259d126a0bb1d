"""Give the staff groups exactly the permissions of ``kit.roles.GRANTS``.

The table replaces the grants of migrations 0001, 0002, 0004, 0006 and 0007 (now no-ops):
on a fresh database this creates the groups; on one those migrations already ran, it
finds them as the table says and writes nothing. A later change of ``GRANTS`` comes with
a migration like this one (see ``kit.roles``).
"""

from django.db import migrations

from kit.roles import roles_sync

# The table this migration was written for (kit.roles.grants_digest()); the roles test
# fails when GRANTS changes without a newer migration carrying its new digest.
GRANTS_DIGEST = "2e93a1e6f7c1c7a4"


def sync(apps, schema_editor):
    roles_sync(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    # The latest migration of every app GRANTS names a permission of, so each model
    # (and custom permission) it grants exists in the history at this point.
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("opsdesk", "0007_onboarding_roles"),
        ("billing", "0003_reconciliation_runs"),
        ("customers", "0005_search_by_whole_email"),
        ("onboarding", "0001_initial"),
        ("support", "0014_reply_delivery_state"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
