"""Created the staff groups of docs/product.md#roles with their permissions.

The grants now live in ``kit.roles.GRANTS`` and ``opsdesk.0008_roles_sync`` applies them;
this migration stays, doing nothing, so that the history of databases that ran it holds.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("support", "0001_initial"),
        ("billing", "0001_initial"),
    ]

    operations = [migrations.RunPython(migrations.RunPython.noop, migrations.RunPython.noop)]
