"""Give the staff groups the grants of issue 21 (``kit.roles.GRANTS``): everyone reads
customers' health signals, account managers acknowledge and snooze their customers'
ones, ops leads anyone's and read the daily sweeps (docs/product.md#health-signals)."""

from django.db import migrations

from kit.roles import roles_sync

# The table this migration was written for (kit.roles.grants_digest()); the roles test
# fails when GRANTS changes without a newer migration carrying its new digest.
GRANTS_DIGEST = "83cf18e846ec0976"


def sync(apps, schema_editor):
    roles_sync(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    # The latest migration of every app GRANTS names a permission of, so each model
    # (and custom permission) it grants exists in the history at this point.
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("opsdesk", "0016_health_signals"),
        ("billing", "0004_invoice_number_search"),
        ("customers", "0006_search_indexes"),
        ("onboarding", "0001_initial"),
        ("support", "0023_macros"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
