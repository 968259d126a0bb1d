"""Tickets open when service levels arrive get their clocks now, not at their next event:
until then the queue would rank an overdue ticket among those without a clock. It runs
the ``sla_refresh`` command (the service with its history), a no-op on an empty database;
reversing it leaves the computed clocks in place."""

from django.core.management import call_command
from django.db import migrations


def backfill(apps, schema_editor):
    call_command("sla_refresh", verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("support", "0019_sla_default_policies")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
