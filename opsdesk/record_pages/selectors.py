"""The open cases of a record, for its page: what ops is already working on about it."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models

from support.models import Case

CASES_SHOWN = 5


def cases_open_about(*, subject: models.Model, limit: int = CASES_SHOWN) -> list[Case]:
    """The open (or acknowledged) cases about ``subject``, oldest first, at most
    ``limit``, with their owners; one query (the content type is cached). Reads the
    ``case_subject`` index."""
    return list(
        Case.objects.filter(
            subject_type=ContentType.objects.get_for_model(subject),
            subject_id=str(subject.pk),
            state__in=Case.OPEN_STATES,
        )
        .select_related("owner")
        .order_by("opened_at", "pk")[:limit]
    )
