"""Make every history table append-only (``audit.appendonly``): a trigger rejecting
UPDATE and DELETE, except retention's opt-in deletes of old rows. History tables created
by later migrations get it from the ``post_migrate`` handler of ``audit.apps``."""

from django.db import migrations

from audit import appendonly


def install(apps, schema_editor):
    tables = appendonly.history_tables(apps.get_models())
    appendonly.install(tables, using=schema_editor.connection.alias)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    qn = schema_editor.connection.ops.quote_name
    for table in appendonly.history_tables(apps.get_models()):
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {appendonly.TRIGGER} ON {qn(table.table)}")
    schema_editor.execute(f"DROP FUNCTION IF EXISTS {appendonly.FUNCTION}()")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_reconciliation_runs"),
        ("customers", "0003_history_for_and_refunds"),
        ("onboarding", "0001_initial"),
        ("opsdesk", "0007_onboarding_roles"),
        ("support", "0009_case_period"),
    ]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
