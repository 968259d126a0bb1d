"""Deliveries say what they are: ``kind`` (a manager's daily digest or a team's weekly
roll-up) and a roll-up's ``team``, instead of each page reading the key's ``rollup:``
prefix. The roll-ups already logged get both from their key (the team's group as named
now; ``rollup:fallback`` is the customers of no team, or all of them while no team group
exists), each with its history row; a constraint keeps kind and key agreeing after."""

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone

ACTOR = "migration:opsdesk.0018_delivery_kind"
PREFIX = "rollup:"


def fill(apps, schema_editor):
    using = schema_editor.connection.alias
    now = timezone.now()
    Delivery = apps.get_model("opsdesk", "DigestDelivery")
    History = apps.get_model("opsdesk", "HistoricalDigestDelivery")
    groups = apps.get_model("auth", "Group").objects.using(using)
    teams = dict(
        groups.filter(name__startswith=settings.OPSDESK_TEAM_GROUP_PREFIX).values_list("pk", "name")
    )
    rest = "Customers of no team" if teams else "All account managers"
    for row in Delivery.objects.using(using).filter(recipient_key__startswith=PREFIX):
        group = row.recipient_key.removeprefix(PREFIX).partition(":")[0]
        row.kind = "rollup"
        if row.recipient_key == f"{PREFIX}fallback":
            row.team = rest
        else:
            row.team = teams.get(int(group), "") if group.isdigit() else ""
        row.save(update_fields=["kind", "team"])
        History.objects.using(using).create(
            history_date=now,
            history_type="~",
            history_actor=ACTOR,
            history_change_reason="a team roll-up, as its key says",
            **{f.attname: getattr(row, f.attname) for f in Delivery._meta.concrete_fields},
        )


class Migration(migrations.Migration):
    dependencies = [
        ("opsdesk", "0017_roles_sync_issue21"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="digestdelivery",
            name="kind",
            field=models.CharField(
                choices=[("digest", "Daily digest"), ("rollup", "Team roll-up")],
                default="digest",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="digestdelivery",
            name="team",
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.AddField(
            model_name="historicaldigestdelivery",
            name="kind",
            field=models.CharField(
                choices=[("digest", "Daily digest"), ("rollup", "Team roll-up")],
                default="digest",
                max_length=10,
            ),
        ),
        migrations.AddField(
            model_name="historicaldigestdelivery",
            name="team",
            field=models.CharField(blank=True, max_length=150),
        ),
        migrations.AlterField(
            model_name="digestdelivery",
            name="digest_date",
            field=models.DateField(verbose_name="date"),
        ),
        migrations.AlterField(
            model_name="historicaldigestdelivery",
            name="digest_date",
            field=models.DateField(verbose_name="date"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="digestdelivery",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("kind", "rollup"), ("recipient_key__startswith", "rollup:")),
                    models.Q(
                        ("kind", "digest"),
                        models.Q(("recipient_key__startswith", "rollup:"), _negated=True),
                    ),
                    _connector="OR",
                ),
                name="digest_kind_matches_key",
            ),
        ),
    ]
