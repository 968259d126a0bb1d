"""History for every model: the audited base that all opsdesk models share.

``AuditedModel`` gives a model (1) a ``history`` of django-simple-history whose rows name
their actor (``history_actor``) and (2) a manager whose write paths that would skip
history fail loudly. Bulk writes go through ``audit.bulk`` instead, which records history.
"""

from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record

from audit import held
from audit.context import current_actor, recorded_moment
from audit.guard import AuditedManager


class HistoricalActor(models.Model):
    """Fields every historical row carries besides simple-history's own."""

    history_actor = models.CharField(
        max_length=200,
        db_index=True,  # the audit log filters by actor
        help_text="Who made the change: a username, task:<name>, command:<name> or webhook:<id>.",
    )
    history_for = models.CharField(
        max_length=100,
        blank=True,
        default="",
        db_default="",  # raw SQL writers that predate the column still insert
        help_text="What the change was done for: a ticket or case, as <app>.<model>:<id>.",
    )

    class Meta:
        abstract = True


def _history_user(request=None, **kwargs):
    return current_actor().user


class AuditedHistoricalRecords(HistoricalRecords):
    """simple-history's ``HistoricalRecords``, whose changed rows of a record can be held
    back and written as one entry (``audit.held.history_as_one``)."""

    def finalize(self, sender, **kwargs):
        super().finalize(sender, **kwargs)
        if sender is self.cls:
            held.register(sender, self)

    def create_historical_record(self, instance, history_type, using=None):
        if held.held_back(instance, history_type):
            return
        super().create_historical_record(instance, history_type, using)


def audited_history(**kwargs) -> HistoricalRecords:
    """The ``HistoricalRecords`` every opsdesk model uses."""
    return AuditedHistoricalRecords(
        bases=[HistoricalActor],
        # 64-bit like every other id: history outgrows its tables fastest.
        history_id_field=models.BigAutoField(primary_key=True),
        get_user=_history_user,
        cascade_delete_history=False,
        **kwargs,
    )


def _stamp_actor(sender, history_instance, **kwargs):
    actor = current_actor()
    history_instance.history_actor = actor.label
    history_instance.history_for = actor.done_for
    if not history_instance.history_change_reason and actor.reason:
        history_instance.history_change_reason = actor.reason
    if (moment := recorded_moment()) is not None:
        history_instance.history_date = moment


pre_create_historical_record.connect(_stamp_actor, dispatch_uid="audit.stamp_actor")


class AuditedModel(models.Model):
    """Base of every opsdesk model: the guarded manager. Add ``history = audited_history()``."""

    objects = AuditedManager()

    class Meta:
        abstract = True
