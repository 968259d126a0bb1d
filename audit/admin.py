"""The admin base every opsdesk model uses: the unfold theme, history with a readable
per-field diff and the actor, and changelists whose cost does not grow with the table."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin
from unfold.decorators import display


class CappedCountPaginator(Paginator):
    """Counts at most ``cap + 1`` rows, so a page never runs an unbounded ``COUNT(*)``.

    On a large table the admin shows ``cap`` pages at most; search and filters narrow it.
    """

    cap = 10_000

    @cached_property
    def count(self) -> int:
        # SELECT COUNT(*) FROM (SELECT ... LIMIT cap + 1): bounded whatever the table size.
        return self.object_list.order_by()[: self.cap + 1].count()


class AuditedModelAdmin(SimpleHistoryAdmin, ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    history_list_display = ["actor"]
    history_list_per_page = 50

    @admin.display(description="Actor")
    def actor(self, record) -> str:
        return record.history_actor


def choice_badge(field: str, colors: dict[str, str], *, description: str = ""):
    """A list column showing a choice field as a coloured label (``colors``: value -> tone)."""

    @display(
        description=description or field.replace("_", " ").capitalize(),
        ordering=field,
        label=colors,
    )
    def badge(self, obj):
        return getattr(obj, field), getattr(obj, f"get_{field}_display")()

    return badge


def short_text(field: str, *, length: int = 80, description: str = ""):
    """A list column showing the start of a long text field, or "—" when it is empty."""

    @display(description=description or field.replace("_", " ").capitalize())
    def column(self, obj):
        text = getattr(obj, field)
        return (text[:length] + "…") if len(text) > length else (text or "—")

    return column
