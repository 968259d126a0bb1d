"""Granted the digest deliveries: every role reads them, ops leads resend.

The grants now live in ``kit.roles.GRANTS`` and ``opsdesk.0008_roles_sync`` applies them;
this migration stays, doing nothing, so that the history of databases that ran it holds.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("opsdesk", "0003_digest_deliveries")]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
