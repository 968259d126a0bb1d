"""Give the staff groups the grants of issue 19's records (``kit.roles.GRANTS``): every
role reads problems and macros and keeps its own saved views; support and ops leads work
problems and write macros; ops leads share saved views of both pages."""

from django.db import migrations

from kit.roles import roles_sync

# The table this migration was written for (kit.roles.grants_digest()); the roles test
# fails when GRANTS changes without a newer migration carrying its new digest.
GRANTS_DIGEST = "0ee7066d5316e66b"


def sync(apps, schema_editor):
    roles_sync(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    # The latest migration of every app GRANTS names a permission of, so each model
    # (and custom permission) it grants exists in the history at this point.
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("opsdesk", "0012_saved_views"),
        ("billing", "0003_reconciliation_runs"),
        ("customers", "0005_search_by_whole_email"),
        ("onboarding", "0001_initial"),
        ("support", "0023_macros"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
