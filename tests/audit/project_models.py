"""The project's own models (every concrete model of the opsdesk apps, history models
left out), for the tests that check each of them keeps audited history."""

from __future__ import annotations

from django.apps import apps
from django.db import models

PROJECT_APPS = ["customers", "support", "billing", "onboarding", "audit", "opsdesk"]


def is_history_model(model: type[models.Model]) -> bool:
    """simple-history's own models (``HistoricalX`` and its m2m ``HistoricalX_tags``)."""
    return hasattr(model, "instance_type")


def project_models(app_labels=PROJECT_APPS) -> list[type[models.Model]]:
    found = []
    for label in app_labels:
        for model in apps.get_app_config(label).get_models():
            if not is_history_model(model) and not model._meta.abstract:
                found.append(model)
    return found
