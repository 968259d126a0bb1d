"""Searches that read an index at any table size: the admin changelists' search
(``customers.admin.IndexedSearchMixin``) and the global search (``opsdesk.search``).

Django's ``icontains`` is ``UPPER(col::text) LIKE UPPER('%term%')``: the models index
``Upper(col)`` with ``gin_trgm_ops`` (``customers.models.trigram_index``) so that it reads
that index. Several fields ORed in one WHERE let PostgreSQL scan the table instead, so a
match over several fields is a UNION of one SELECT per field, each planned alone.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import QuerySet
from django.db.models.functions import Lower


def is_email(term: str) -> bool:
    try:
        validate_email(term)
    except ValidationError:
        return False
    return True


def holding(model, field: str, term: str) -> QuerySet:
    """The rows of ``model`` whose ``field`` holds ``term``, any case. A whole email
    address in an email field is that address (its ``LOWER()`` index): every address
    shares trigrams such as "EXA" and ".CO", so a substring match of one reads most of a
    trigram index. Anything else is a substring (``icontains``, its trigram index)."""
    if isinstance(model._meta.get_field(field), models.EmailField) and is_email(term):
        return model.objects.alias(_lowered=Lower(field)).filter(_lowered=term.lower())
    return model.objects.filter(**{f"{field}__icontains": term})


def holdings(model, fields: list[str], term: str) -> list[QuerySet]:
    """The rows of ``model`` where each of ``fields`` holds ``term`` (``holding``), one
    queryset per field, to be UNIONed: each planned alone reads that field's index."""
    return [holding(model, field, term) for field in fields]


def matching(model, fields: list[str], term: str, *, column: str = "pk") -> QuerySet:
    """A subquery of ``column`` of the rows of ``model`` where one of ``fields`` holds
    ``term``: a UNION of one SELECT per field, each planned alone and so able to read
    that field's index (an OR of them in one WHERE lets PostgreSQL scan the table)."""
    selects = [rows.order_by().values(column) for rows in holdings(model, fields, term)]
    return selects[0].union(*selects[1:])
