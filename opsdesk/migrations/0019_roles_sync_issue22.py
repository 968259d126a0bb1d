"""Give the staff groups the grants of issue 22 (``kit.roles.GRANTS``): ops leads resolve
a CRM contract that waits for its account, by linking it to a customer or creating the
customer (``customers.link_crm_account``, docs/product.md#crm); every role reads the
record of each invoice import (``billing.view_invoiceimport``, docs/product.md#freshness)."""

from django.db import migrations

from kit.roles import roles_sync

# The table this migration was written for (kit.roles.grants_digest()); the roles test
# fails when GRANTS changes without a newer migration carrying its new digest.
GRANTS_DIGEST = "ad6f25870c8f19ae"


def sync(apps, schema_editor):
    roles_sync(apps, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    # The latest migration of every app GRANTS names a permission of, so each model
    # (and custom permission) it grants exists in the history at this point.
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("opsdesk", "0018_delivery_kind"),
        ("billing", "0005_invoice_imports"),
        ("customers", "0007_crm_link"),
        ("onboarding", "0001_initial"),
        ("support", "0027_freshness_indexes"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
