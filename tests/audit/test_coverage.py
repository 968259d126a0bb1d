"""Coverage proof: every concrete model of every opsdesk app keeps audited history.

A new model without ``history = audited_history()`` (or with a plain ``HistoricalRecords``
whose rows name no actor) fails ``test_every_project_model_keeps_audited_history``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import models
from django.test.utils import isolate_apps

from tests.audit.project_models import project_models


def history_problem(model: type[models.Model]) -> str | None:
    """Why ``model`` is not history-tracked the opsdesk way, or None when it is."""
    label = model._meta.label
    history = getattr(model, "history", None)
    history_model = getattr(history, "model", None)
    if history_model is None or history_model is model:
        return f"{label} has no history: add `history = audited_history()`"
    fields = {f.name for f in history_model._meta.get_fields()}
    missing = sorted({"history_actor", "history_for"} - fields)
    if missing:
        return (
            f"{label}'s history rows lack {', '.join(missing)}: use audit.models.audited_history()"
        )
    return None


def untracked(models_) -> list[str]:
    return [problem for model in models_ if (problem := history_problem(model))]


def test_the_walk_finds_every_project_model_and_no_history_model():
    models_ = project_models()
    labels = {m._meta.label for m in models_}
    assert len(models_) >= 20
    assert {
        "customers.Customer",
        "customers.Entitlement",
        "support.Ticket",
        "support.Case",
        "billing.Invoice",
        "billing.ReconciliationRun",
        "onboarding.Checklist",
        "onboarding.ChecklistTask",
        "opsdesk.DigestDelivery",
    } <= labels
    assert not any(label.split(".")[1].startswith("Historical") for label in labels)


@pytest.mark.parametrize("model", project_models(), ids=lambda m: m._meta.label)
def test_every_project_model_keeps_audited_history(model):
    assert history_problem(model) is None, history_problem(model)
    assert model.history.model.instance_type is model


@isolate_apps("audit")
def test_a_model_without_history_fails_the_check():
    class Untracked(models.Model):  # noqa: DJ008
        name = models.CharField(max_length=10)

        class Meta:
            app_label = "audit"

    assert untracked([Untracked]) == [
        "audit.Untracked has no history: add `history = audited_history()`"
    ]


@isolate_apps("audit")
def test_a_model_whose_history_names_no_actor_fails_the_check():
    class PlainHistory(models.Model):  # noqa: DJ008
        history_id = models.BigAutoField(primary_key=True)

        class Meta:
            app_label = "audit"

    class Tracked(models.Model):  # noqa: DJ008
        class Meta:
            app_label = "audit"

    Tracked.history = SimpleNamespace(model=PlainHistory)  # as plain HistoricalRecords() gives
    assert untracked([Tracked]) == [
        "audit.Tracked's history rows lack history_actor, history_for:"
        " use audit.models.audited_history()"
    ]


def test_the_check_passes_on_the_project_and_would_name_a_new_untracked_model():
    assert untracked(project_models()) == []
    with isolate_apps("audit"):

        class Late(models.Model):  # noqa: DJ008
            class Meta:
                app_label = "audit"

        assert untracked([*project_models(), Late]) == [
            "audit.Late has no history: add `history = audited_history()`"
        ]
