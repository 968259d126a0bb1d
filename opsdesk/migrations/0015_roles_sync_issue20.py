"""Give the staff groups the grants of issue 20 (``kit.roles.GRANTS``): ops leads open
the operations scorecard (``opsdesk.view_scorecard``, docs/product.md#scorecard)."""

from django.db import migrations

from kit.roles import roles_sync

# The table this migration was written for (kit.roles.grants_digest()); the roles test
# fails when GRANTS changes without a newer migration carrying its new digest.
GRANTS_DIGEST = "128c4ff8f7339599"


def sync(apps, schema_editor):
    roles_sync(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    # The latest migration of every app GRANTS names a permission of, so each model
    # (and custom permission) it grants exists in the history at this point.
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("opsdesk", "0014_scorecard_permission"),
        ("billing", "0004_invoice_number_search"),
        ("customers", "0006_search_indexes"),
        ("onboarding", "0001_initial"),
        ("support", "0023_macros"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
