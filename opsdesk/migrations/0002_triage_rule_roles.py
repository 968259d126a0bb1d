"""Granted the triage rules: Support edits them, the other roles read them.

The grants now live in ``kit.roles.GRANTS`` and ``opsdesk.0008_roles_sync`` applies them;
this migration stays, doing nothing, so that the history of databases that ran it holds.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("opsdesk", "0001_roles"),
        ("support", "0004_triage_rules"),
    ]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
