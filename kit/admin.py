"""The Django admin's own query parameters, read the kit.params way."""

from __future__ import annotations

from django.contrib.admin.options import IncorrectLookupParameters


class AdminParamsMixin:
    """For every ModelAdmin: the admin's own parameters never make a 500.

    - ``?_to_field=`` given empty means the primary key: Django passed the empty text on
      to ``get_object`` as a field name, and a field named "" raised
      ``FieldDoesNotExist`` on every change and delete page.
    - A changelist filter value holding a NUL reached PostgreSQL, which refuses NUL in
      text, and a date hierarchy year of 10**21 overflowed ``datetime``: both are refused
      as any filter the admin cannot apply is (its ``?e=1`` page).
    """

    def get_object(self, request, object_id, from_field=None):
        return super().get_object(request, object_id, from_field or None)

    def get_changelist_instance(self, request):
        if any("\x00" in value for _, values in request.GET.lists() for value in values):
            raise IncorrectLookupParameters("A filter value holds a NUL character.")
        if self.date_hierarchy:
            for part in ("year", "month", "day"):
                for value in request.GET.getlist(f"{self.date_hierarchy}__{part}"):
                    if not (value.isdigit() and len(value) <= 4):
                        raise IncorrectLookupParameters(f"{part} is not a number of a date.")
        return super().get_changelist_instance(request)
