"""Granted onboarding: every role reads it and works tasks, ops leads edit templates.

The grants now live in ``kit.roles.GRANTS`` and ``opsdesk.0008_roles_sync`` applies them;
this migration stays, doing nothing, so that the history of databases that ran it holds.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("opsdesk", "0006_reconciliation_roles"),
        ("onboarding", "0001_initial"),
    ]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
