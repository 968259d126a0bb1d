"""The default service levels (docs/product.md#service-levels), as data support can edit:
Starter and Growth in business hours Mon-Fri 09:00-17:00 of OPSDESK_TIME_ZONE; Enterprise
around the clock for urgent and high, business hours otherwise; a default policy (the
same as Starter) for customers without an active contract. First response urgent 1 h,
high 4 h, normal 8 h, low 24 h; next response half of that; resolution five times.

The numbers are written out here (not read from support.sla) so that this migration
makes the same rows whatever the code says later."""

from django.conf import settings
from django.db import migrations
from django.utils import timezone

ACTOR = "migration:support.0019_sla_default_policies"

HOURS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
FIRST_RESPONSE_MINUTES = {"urgent": 60, "high": 240, "normal": 480, "low": 1440}
POLICIES = [
    # name, plans, is_default, priorities around the clock
    ("Starter", ["starter"], False, ()),
    ("Growth", ["growth"], False, ()),
    ("Enterprise", ["enterprise"], False, ("urgent", "high")),
    ("Default", [], True, ()),
]


def install(apps, schema_editor):
    using = schema_editor.connection.alias
    now = timezone.now()

    def create(model: str, **values):
        """A row and its history entry (a migration's models record none by themselves)."""
        row = apps.get_model("support", model).objects.using(using).create(**values)
        apps.get_model("support", f"Historical{model}").objects.using(using).create(
            id=row.pk,
            history_date=now,
            history_type="+",
            history_actor=ACTOR,
            history_change_reason="default service levels",
            **values,
        )
        return row

    SlaPolicy = apps.get_model("support", "SlaPolicy")
    for name, plans, is_default, around_the_clock in POLICIES:
        if SlaPolicy.objects.using(using).filter(name=name).exists():
            continue
        policy = create(
            "SlaPolicy",
            name=name,
            plans=plans,
            is_default=is_default,
            time_zone=settings.TIME_ZONE,
            business_hours=HOURS,
        )
        for priority, minutes in FIRST_RESPONSE_MINUTES.items():
            create(
                "SlaTarget",
                policy_id=policy.pk,
                priority=priority,
                first_response_minutes=minutes,
                next_response_minutes=minutes // 2,
                resolution_minutes=minutes * 5,
                business_hours=priority not in around_the_clock,
            )


class Migration(migrations.Migration):
    dependencies = [("support", "0018_sla_policies")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
