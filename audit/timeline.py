"""Timelines: what happened to records, newest first, read from their history rows.

``timeline(sources, ...)`` merges any number of history querysets (django-simple-history
rows of any models) into one page of entries. Each entry says when, who
(``history_actor``), why (``history_change_reason``), what for (``history_for``: the
ticket or case), which record, and what changed, as simple-history's ``diff_against``
of the row with the row before it of the same object, with choices shown by their labels
and foreign keys by their names.

A bulk operation reads as one entry: rows of one model with the same actor, reason,
"done for" and history type, less than ``BULK_GAP`` apart from one another, that made
the same changes to different objects ("1,000 entitlements transferred: customer: Acme →
Globex"). ``audit.bulk.update_with_history`` stamps each row with its own
``timezone.now()``, so a bulk's rows are microseconds apart, not equal, and may straddle
a second: they are grouped by the gap between neighbours (PostgreSQL window functions),
not by a truncated timestamp. Each object's own timeline still shows its row.

Cost per page, whatever the amount of history: one query per source for the page's
groups, one per history model on the page for its rows and the rows before them, one per
many-to-many field of those models (a ticket's tags), and one per related model named
(changed foreign keys, and the foreign keys of the records shown, since their ``str()``
may read one). No ``COUNT(*)``: a page fetches one group more
than it shows to know whether there is a next one. Grouping reads all the rows a source
selects (a window over them), so sources should be narrow (one object, one customer);
pass ``collapse=False`` for wide ones (a global log), which reads only the newest rows.

``stream(sources, ...)`` yields every entry of the sources, newest first, reading each
source ``chunk`` rows at a time through a server-side cursor: memory stays flat however
many rows there are (an export).

This module is a mechanism: it knows no opsdesk app. Apps say how their models read
(``verbs``) and which rows belong together (the sources).
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple

from django.apps import apps
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models
from django.db.models import OuterRef, Q, Subquery
from django.db.models.expressions import RawSQL
from django.urls import NoReverseMatch, reverse
from django.utils import formats, timezone
from django.utils.text import capfirst
from simple_history.models import ModelChange
from simple_history.utils import get_m2m_reverse_field_name

from kit.people import actor_name, person_name
from kit.text import readable_value

PAGE_SIZE = 50
# Rows of one bulk operation closer together than this read as one entry.
BULK_GAP = dt.timedelta(seconds=1)
EMPTY = "—"

_DEFAULT_VERBS = {"+": "created", "~": "changed", "-": "deleted"}


class Change(NamedTuple):
    """One field's change, ready to read: ``("state", "Assigned", "Revoked")``."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Link:
    """A record named by ``<app_label>.<model>:<pk>`` (``audit.context.record_label``)."""

    ref: str
    text: str  # "Case #12"
    url: str  # its admin change page; "" when it has none


@dataclass(frozen=True)
class Record:
    """The record an entry is about, as it was then."""

    model: str  # verbose name: "entitlement"
    model_plural: str
    pk: Any
    text: str  # its str() as it was then
    url: str  # its admin change page; "" when it has none
    ref: str  # "customers.entitlement:5"


@dataclass(frozen=True)
class Step:
    """What a verb callback sees: a history row, the row before it (None for the first)
    and the names of the fields that changed between them."""

    row: Any
    previous: Any | None
    changed: frozenset[str]

    def went(self, name: str) -> tuple[Any, Any]:
        """``(old, new)`` of a field; old is None for the first row."""
        old = getattr(self.previous, name) if self.previous is not None else None
        return old, getattr(self.row, name)


Verb = Callable[[Step], str]


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    actor: str
    reason: str
    done_for: Link | None
    record: Record  # for a bulk entry, its newest row's record
    history_type: str  # "+", "~" or "-"
    changes: tuple[Change, ...]
    verb: str
    count: int = 1  # rows (objects) this entry stands for
    history_id: int = 0  # its newest row
    is_subject: bool = False  # about the record whose timeline this is

    @property
    def kind(self) -> str:
        """``created``, ``changed`` or ``deleted``: the history type as a word."""
        return _DEFAULT_VERBS.get(self.history_type, "changed")

    @property
    def is_bulk(self) -> bool:
        return self.count > 1

    @property
    def headline(self) -> str:
        """``Entitlement ABCD-2345 assigned`` or ``1,000 entitlements transferred``."""
        if self.is_bulk:
            return f"{self.count:,} {self.record.model_plural} {self.verb}"
        if self.is_subject:
            return capfirst(self.verb)
        return f"{capfirst(self.record.model)} {self.record.text} {self.verb}"


@dataclass(frozen=True)
class TimelinePage:
    entries: list[Entry]
    number: int
    has_next: bool
    page_size: int = PAGE_SIZE

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def next_page_number(self) -> int:
        return self.number + 1

    @property
    def previous_page_number(self) -> int:
        return self.number - 1


def page_number(value: Any) -> int:
    """A page number from a query string: anything but a positive integer is page 1."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return 1
    return number if number >= 1 else 1


def previous_row(history_model: type[models.Model]) -> models.QuerySet:
    """The row before ``OuterRef``'s row of the same object (order: date, then id), for
    ``Subquery(previous_row(H).values(...)[:1])``."""
    pk = history_model.instance_type._meta.pk.attname
    return (
        history_model._default_manager.filter(**{pk: OuterRef(pk)})
        .filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
        )
        .order_by("-history_date", "-history_id")
    )


def parse_record_label(ref: str) -> Link | None:
    """``support.case:12`` -> Link("Case #12", its admin page); None for ""."""
    if not ref:
        return None
    label, _, pk = ref.rpartition(":")
    try:
        model = apps.get_model(label)
    except (LookupError, ValueError):
        return Link(ref=ref, text=ref, url="")
    return Link(
        ref=ref,
        text=f"{capfirst(model._meta.verbose_name)} #{pk}",
        url=_admin_url(model._meta, pk),
    )


def _admin_url(opts, pk) -> str:
    try:
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk])
    except NoReverseMatch:
        return ""


def state_verb(name: str, words: Mapping[Any, str], *, created: str = "created") -> Verb:
    """A verb for a model whose rows mostly tell a state: ``words`` names the new value
    of field ``name`` when it changed ("solved"); other changes read "changed"."""

    def verb(step: Step) -> str:
        if step.row.history_type == "+":
            return created
        if step.row.history_type == "-":
            return "deleted"
        if name in step.changed:
            return words.get(getattr(step.row, name), "changed")
        return "changed"

    return verb


# --- Groups: the page's rows, bulk operations gathered ----------------------------------


@dataclass
class _Group:
    history_model: type[models.Model]
    last: dt.datetime
    last_id: int
    ids: list[int]  # newest first


_KEY = "history_actor, history_change_reason, history_for, history_type"


def _groups(source: models.QuerySet, limit: int, collapse: bool) -> list[_Group]:
    """The newest ``limit`` groups of ``source``: one query."""
    history_model = source.model
    if not collapse:
        rows = source.order_by("-history_date", "-history_id").values_list(
            "history_id", "history_date"
        )[:limit]
        return [_Group(history_model, date, pk, [pk]) for pk, date in rows]
    inner = source.order_by().values(
        "history_id",
        "history_date",
        "history_actor",
        "history_change_reason",
        "history_for",
        "history_type",
    )
    sql, params = inner.query.sql_with_params()
    window = f"PARTITION BY {_KEY} ORDER BY history_date, history_id"
    # Gaps and islands: a row starts a new group when it is more than BULK_GAP after the
    # previous row with the same actor, reason, "done for" and type.
    query = (
        "SELECT max(history_date), max(history_id),"
        " array_agg(history_id ORDER BY history_date DESC, history_id DESC)"
        f" FROM (SELECT *, sum(starts) OVER ({window}) AS island"
        "  FROM (SELECT s.*, CASE WHEN history_date - lag(history_date)"
        f"   OVER ({window}) <= %s THEN 0 ELSE 1 END AS starts"
        f"   FROM ({sql}) s) r) g"
        f" GROUP BY {_KEY}, island"
        " ORDER BY max(history_date) DESC, max(history_id) DESC"
        " LIMIT %s"
    )
    with connections[source.db].cursor() as cursor:
        cursor.execute(query, [BULK_GAP, *params, limit])
        return [_Group(history_model, last, last_id, ids) for last, last_id, ids in cursor]


def _rows(history_model, ids: list[int]) -> dict[int, tuple[Any, Any]]:
    """``{history_id: (row, previous row or None)}`` for ``ids``: one query fetching the
    rows and the row before each of them."""
    pk = history_model.instance_type._meta.pk.attname
    manager = history_model._default_manager
    # One array parameter, however many rows a bulk operation wrote.
    wanted = RawSQL("SELECT unnest(%s::bigint[])", (ids,))
    previous_ids = (
        manager.filter(history_id__in=wanted)
        .annotate(_previous=Subquery(previous_row(history_model).values("history_id")[:1]))
        .values("_previous")
    )
    # One set of ids, not ``IN (...) OR IN (...)``: PostgreSQL reads an OR of two
    # subqueries by scanning the whole table (1.2 s for a million ticket rows).
    previous_sql, previous_params = previous_ids.query.sql_with_params()
    both = RawSQL(
        f"SELECT unnest(%s::bigint[]) UNION SELECT * FROM ({previous_sql}) p",
        (ids, *previous_params),
    )
    fetched = list(manager.filter(history_id__in=both).order_by(pk, "history_date", "history_id"))
    # The rows come sorted per object, oldest first, and hold each wanted row's previous
    # row: the one just before a wanted row of the same object is its previous row.
    wanted_ids = set(ids)
    found: dict[int, tuple[Any, Any]] = {}
    before = None
    for row in fetched:
        previous = (
            before if before is not None and getattr(before, pk) == getattr(row, pk) else None
        )
        if row.history_id in wanted_ids:
            found[row.history_id] = (row, previous)
        before = row
    return found


# --- Entries -----------------------------------------------------------------------------


@dataclass
class _Draft:
    """An entry before its foreign keys are named."""

    row: Any
    step: Step
    delta_changes: list  # simple-history ModelChange, in model field order
    rows: list = field(default_factory=list)


# {(m2m field name, history_id): ids of the related objects the row had}
Members = Mapping[tuple[str, int], frozenset]


def _m2m_fields(history_model) -> list:
    return list(getattr(history_model, "_history_m2m_fields", ()))


def _members(history_model, history_ids: Iterable[int]) -> dict[tuple[str, int], frozenset]:
    """The many-to-many members (a ticket's tags) of the history rows ``history_ids``:
    one query per many-to-many field, where ``diff_against`` would make two per row."""
    ids = [pk for pk in history_ids if pk is not None]
    found: dict[tuple[str, int], set] = defaultdict(set)
    for m2m in _m2m_fields(history_model) if ids else ():
        through = getattr(history_model, m2m.name).model
        target = f"{get_m2m_reverse_field_name(m2m)}_id"
        rows = through._default_manager.filter(history_id__in=ids).values_list("history_id", target)
        for history_id, member in rows:
            found[(m2m.name, history_id)].add(member)
    return {key: frozenset(value) for key, value in found.items()}


def _field(row, name: str):
    """A field of the history row's model; many-to-many fields live on the model only."""
    try:
        return row._meta.get_field(name)
    except FieldDoesNotExist:
        return row.instance_type._meta.get_field(name)


def _diff(row, previous, members: Members) -> list:
    if previous is None:
        return []
    m2m_fields = _m2m_fields(type(row))
    changes = list(row.diff_against(previous, excluded_fields=[f.name for f in m2m_fields]).changes)
    for m2m in m2m_fields:
        old = members.get((m2m.name, previous.history_id), frozenset())
        new = members.get((m2m.name, row.history_id), frozenset())
        if old != new:
            changes.append(ModelChange(m2m.name, sorted(old), sorted(new)))
    order = {f.name: i for i, f in enumerate(row.instance_type._meta.get_fields())}
    return sorted(changes, key=lambda change: order.get(change.field, len(order)))


def _signature(changes: list) -> tuple:
    return tuple((change.field, _hashable(change.old), _hashable(change.new)) for change in changes)


def _hashable(value):
    """A value as a dictionary key: lists and JSON objects (a case's details) become
    tuples, recursively."""
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _hashable(item)) for key, item in value.items()))
    return value


def _split(group: _Group, rows: dict[int, tuple[Any, Any]], members: Members) -> list[_Draft]:
    """A group's rows as drafts: rows with the same changes to different objects become
    one draft (a bulk operation); anything else stays apart."""
    drafts: list[_Draft] = []
    open_drafts: dict[tuple, _Draft] = {}
    for history_id in group.ids:
        if history_id not in rows:  # gone between the two queries; nothing to show
            continue
        row, previous = rows[history_id]
        changes = _diff(row, previous, members)
        signature = _signature(changes)
        draft = open_drafts.get(signature)
        pk_name = row.instance_type._meta.pk.attname
        same_object = draft is not None and any(
            getattr(other, pk_name) == getattr(row, pk_name) for other in draft.rows
        )
        if draft is None or same_object:
            step = Step(row, previous, frozenset(change.field for change in changes))
            draft = _Draft(row=row, step=step, delta_changes=changes, rows=[row])
            open_drafts[signature] = draft
            drafts.append(draft)
        else:
            draft.rows.append(row)
    return drafts


def _related_wanted(drafts: Iterable[_Draft]) -> dict[type[models.Model], set]:
    """The related objects whose names the page shows: changed foreign keys, and every
    foreign key of the records named (their ``str()`` may read one)."""
    wanted: dict[type[models.Model], set] = defaultdict(set)
    for draft in drafts:
        for change in draft.delta_changes:
            model_field = _field(draft.row, change.field)
            if model_field.many_to_many:
                wanted[model_field.related_model].update([*change.old, *change.new])
            elif model_field.many_to_one:
                wanted[model_field.related_model].update(
                    v for v in (change.old, change.new) if v is not None
                )
        for model_field in draft.row.instance_type._meta.concrete_fields:
            if model_field.many_to_one:
                value = getattr(draft.row, model_field.attname)
                if value is not None:
                    wanted[model_field.related_model].add(value)
        # The person who acted, named by their name rather than their username.
        if (user_id := getattr(draft.row, "history_user_id", None)) is not None:
            wanted[_history_user_model(draft.row)].add(user_id)
    return wanted


def _history_user_model(row):
    return type(row)._meta.get_field("history_user").related_model


def _actor(row, related: Mapping[tuple, Any]) -> str:
    """Who acted: a person by their name (kit.people), "task:… for <name>" for what ran on
    a person's behalf; system actors as recorded."""
    user_id = getattr(row, "history_user_id", None)
    user = related.get((_history_user_model(row), user_id)) if user_id is not None else None
    return actor_name(row.history_actor, user)


def _fetch_related(wanted: Mapping[type[models.Model], set]) -> dict[tuple, Any]:
    """One query per related model."""
    found = {}
    for model, pks in wanted.items():
        for pk, obj in model._base_manager.in_bulk(list(pks)).items():
            found[(model, pk)] = obj
    return found


_PRECISIONS = ("j M Y H:i", "j M Y H:i:s", "j M Y H:i:s.u")


def _display(model_field, value, related: Mapping[tuple, Any], moment: str = _PRECISIONS[0]) -> str:
    if value is None or value == "" or value == []:
        return EMPTY
    if model_field.many_to_one:
        obj = related.get((model_field.related_model, value))
        return _name(obj) if obj is not None else f"#{value} (deleted)"
    if model_field.many_to_many:
        names = []
        for pk in value:
            obj = related.get((model_field.related_model, pk))
            names.append(_name(obj) if obj is not None else f"#{pk} (deleted)")
        return ", ".join(sorted(names))
    if isinstance(model_field, ArrayField):
        return ", ".join(_display(model_field.base_field, item, related) for item in value)
    if model_field.flatchoices:
        return str(dict(model_field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.datetime):
        return formats.date_format(timezone.localtime(value), moment)
    if isinstance(value, dt.date):
        return formats.date_format(value, "j M Y")
    return readable_value(value)


def _name(obj) -> str:
    """A related record's name; a person's is their full name."""
    return person_name(obj) if hasattr(obj, "get_full_name") else str(obj)


def _change(model_field, old, new, related: Mapping[tuple, Any]) -> Change:
    # Moments a few seconds apart read the same to the minute: show as much as tells
    # them apart (seconds, then microseconds).
    for precision in _PRECISIONS:
        shown = (
            _display(model_field, old, related, precision),
            _display(model_field, new, related, precision),
        )
        if shown[0] != shown[1]:
            break
    return Change(str(model_field.verbose_name), *shown)


def _record(row, related: Mapping[tuple, Any]) -> Record:
    opts = row.instance_type._meta
    instance = row.history_object
    # Names come from the page's one query per related model, never one per row.
    for model_field in opts.concrete_fields:
        if model_field.many_to_one:
            value = getattr(instance, model_field.attname)
            if value is not None:
                model_field.set_cached_value(
                    instance, related.get((model_field.related_model, value))
                )
    pk = instance.pk
    return Record(
        model=str(opts.verbose_name),
        model_plural=str(opts.verbose_name_plural),
        pk=pk,
        text=str(instance),
        url=_admin_url(opts, pk),
        ref=f"{opts.label_lower}:{pk}",
    )


def _entry(draft: _Draft, verbs, related, subject_ref: str) -> Entry:
    row = draft.row
    changes = tuple(
        _change(_field(row, c.field), c.old, c.new, related) for c in draft.delta_changes
    )
    verb_of = verbs.get(row.instance_type)
    verb = verb_of(draft.step) if verb_of else _DEFAULT_VERBS.get(row.history_type, "changed")
    record = _record(row, related)
    return Entry(
        at=row.history_date,
        actor=_actor(row, related),
        reason=row.history_change_reason or "",
        done_for=parse_record_label(row.history_for),
        record=record,
        history_type=row.history_type,
        changes=changes,
        verb=verb,
        count=len(draft.rows),
        history_id=row.history_id,
        is_subject=bool(subject_ref) and record.ref == subject_ref,
    )


def timeline(
    sources: Iterable[models.QuerySet],
    *,
    verbs: Mapping[type[models.Model], Verb] | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    subject: models.Model | None = None,
    collapse: bool = True,
) -> TimelinePage:
    """Page ``page`` of the merged timeline of ``sources`` (history querysets), newest
    first.

    ``verbs`` maps a model to the callback naming what one of its rows did ("assigned");
    models without one read "created", "changed", "deleted". ``subject``, the record
    whose timeline this is, reads without its name ("Assigned"). Sources of the same
    model are combined (a row appears once). A page is ``page_size`` groups: a bulk
    entry counts as one, and a group whose rows made different changes shows as several
    entries.
    """
    verbs = verbs or {}
    page = max(1, page)
    by_model: dict[type[models.Model], models.QuerySet] = {}
    for source in sources:
        model = source.model
        by_model[model] = by_model[model] | source if model in by_model else source

    limit = page * page_size + 1
    groups = [g for source in by_model.values() for g in _groups(source, limit, collapse)]
    groups.sort(key=lambda g: (g.last, g.last_id), reverse=True)
    start = (page - 1) * page_size
    shown = groups[start : start + page_size]
    has_next = len(groups) > start + page_size

    ids_by_model: dict[type[models.Model], list[int]] = defaultdict(list)
    for group in shown:
        ids_by_model[group.history_model].extend(group.ids)
    rows = {model: _rows(model, ids) for model, ids in ids_by_model.items()}
    members = {
        model: _members(model, [r.history_id for pair in found.values() for r in pair if r])
        for model, found in rows.items()
    }
    drafts = [
        draft
        for group in shown
        for draft in _split(group, rows[group.history_model], members[group.history_model])
    ]
    related = _fetch_related(_related_wanted(drafts))
    subject_ref = f"{subject._meta.label_lower}:{subject.pk}" if subject is not None else ""
    entries = [_entry(draft, verbs, related, subject_ref) for draft in drafts]
    entries.sort(key=lambda e: (e.at, e.history_id), reverse=True)
    return TimelinePage(entries=entries, number=page, has_next=has_next, page_size=page_size)


# --- Streams: every entry, in constant memory ---------------------------------------------

STREAM_CHUNK = 500


def _source_stream(source: models.QuerySet, verbs, chunk: int) -> Iterator[Entry]:
    """Entries of ``source``'s rows, one each (no bulk grouping), newest first. Per chunk
    of rows: the rows come from one server-side cursor, plus one query for the rows before
    them and one per related model named."""
    history_model = source.model
    rows = (
        source.order_by("-history_date", "-history_id")
        .annotate(_previous_id=Subquery(previous_row(history_model).values("history_id")[:1]))
        .iterator(chunk_size=chunk)
    )
    while batch := list(islice(rows, chunk)):
        wanted = [row._previous_id for row in batch if row._previous_id is not None]
        previous = history_model._default_manager.in_bulk(wanted) if wanted else {}
        members = _members(history_model, [*wanted, *(row.history_id for row in batch)])
        drafts = []
        for row in batch:
            before = previous.get(row._previous_id)
            changes = _diff(row, before, members)
            step = Step(row, before, frozenset(change.field for change in changes))
            drafts.append(_Draft(row=row, step=step, delta_changes=changes, rows=[row]))
        related = _fetch_related(_related_wanted(drafts))
        for draft in drafts:
            yield _entry(draft, verbs, related, "")


def stream(
    sources: Iterable[models.QuerySet],
    *,
    verbs: Mapping[type[models.Model], Verb] | None = None,
    chunk: int = STREAM_CHUNK,
) -> Iterator[Entry]:
    """Every entry of ``sources``, newest first, merged as the sources are read: at most
    ``chunk`` rows of each source in memory at a time. Sources of the same model are
    combined, as in ``timeline``."""
    verbs = verbs or {}
    by_model: dict[type[models.Model], models.QuerySet] = {}
    for source in sources:
        model = source.model
        by_model[model] = by_model[model] | source if model in by_model else source
    return heapq.merge(
        *(_source_stream(source, verbs, chunk) for source in by_model.values()),
        key=lambda entry: (entry.at, entry.history_id),
        reverse=True,
    )
