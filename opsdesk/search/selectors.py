"""The global search (docs/product.md#search): one box for customers, contacts,
entitlements, orders, invoices and tickets, grouped by kind.

Every match reads an index at any table size, and no search reads every row a common
word matches: each kind's matches are one SELECT per field (``kit.indexed_search``, the
changelists' own search), each on that field's trigram or ``LOWER()`` index. A group is
two queries: its first rows (the first ``cap`` of each SELECT in the kind's order, then
the first ``cap`` of their UNION: an ordering index walked until enough match, or the
few matches sorted), and how many matched, counted to ``COUNT_CAP`` and shown as
"200+" past it. The exact hits (a whole code, order id, invoice number or ticket
number) are one more query, a UNION ALL of unique lookups.

A kind the person may not view is not searched. The changelists show every row of a kind
to whoever may view it (the account managers' row rule, ``customers.access``, governs
writes), and so does the search.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import QuerySet, Value
from django.urls import reverse

from billing.models import Invoice
from customers.codes import redemption_code_bare
from customers.models import Contact, Customer, Entitlement, Order, bare_code
from kit.indexed_search import holding, holdings
from kit.text import capped_text
from support.models import Ticket

MAX_LENGTH = 200
GROUP_CAP = 20
# A group counts its matches up to here: "200+" past it (the kind's list counts on).
COUNT_CAP = 200
# A substring search needs a trigram to look up: three letters or digits in a row.
_SEARCHABLE = re.compile(r"[^\W_]{3}")
_TICKET_NUMBER = re.compile(r"#?\s*([0-9]{1,18})")
_CODE_LIKE = re.compile(r"[A-Z0-9]{3,}")

EXAMPLES = [
    ("Acme", "customers by name, tenant id or CRM id"),
    ("jane@acme.example", "contacts, requesters and entitlement holders by email (or part)"),
    ("K7QP-4XMD-9RTW", "an entitlement code, with or without dashes"),
    ("#1234", "a ticket number, or words of a ticket's subject"),
    ("ord_8f3k2m", "an order id, whole or part"),
    ("OPS-2026-0042", "an invoice number, whole or part"),
]


class QueryRefused(ValueError):
    """Not something the search can look up; the message says why, in the page's words."""


@dataclass(frozen=True)
class Query:
    text: str  # as typed, stripped, whitespace runs as one space
    ticket_id: int | None  # "#1234" or "1234"
    code: str  # the text as a bare code (customers.codes.redemption_code_bare), or ""
    substring: bool  # long enough for a substring search


def query_parse(raw: str) -> Query:
    """What ``raw`` asks for, or ``QueryRefused`` (empty, too long, control characters,
    too short to look up)."""
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in raw if not char.isspace()):
        raise QueryRefused(
            "The search text holds control characters (a NUL byte or the like): "
            "type or paste plain text."
        )
    text = " ".join(raw.split())
    if not text:
        raise QueryRefused("Type something to search for.")
    if len(text) > MAX_LENGTH:
        raise QueryRefused(f"That is too long to search for: up to {MAX_LENGTH} characters.")
    number = _TICKET_NUMBER.fullmatch(text)
    substring = bool(_SEARCHABLE.search(text))
    if not substring and not number:
        raise QueryRefused(
            "Type at least 3 letters or digits in a row (a name, an email, a code, an id), "
            "or a ticket number such as #1234."
        )
    bare = redemption_code_bare(text)
    return Query(
        text=text,
        ticket_id=int(number.group(1)) if number else None,
        code=bare if _CODE_LIKE.fullmatch(bare) else "",
        substring=substring,
    )


@dataclass(frozen=True)
class Hit:
    title: str
    detail: str
    url: str


@dataclass(frozen=True)
class Kind:
    key: str
    label: str  # a group's heading, and "show all in ..."
    icon: str  # Material Symbols, as the sidebar's entry
    model: type
    matches: Callable[[Query], list[QuerySet]]  # the matching rows, one SELECT each (UNIONed)
    exact: Callable[[Query], QuerySet | None]  # the rows the query names exactly
    order: tuple[str, ...]
    related: tuple[str, ...]
    describe: Callable[[object], tuple[str, str]]

    @property
    def opts(self):
        return self.model._meta

    def may_view(self, user) -> bool:
        app, name = self.opts.app_label, self.opts.model_name
        return user.has_perm(f"{app}.view_{name}") or user.has_perm(f"{app}.change_{name}")

    def record_url(self, pk) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[pk])

    def list_url(self, query: Query) -> str:
        """The kind's changelist searched for the query (as one phrase: the changelist
        otherwise needs each word somewhere)."""
        q = query.text
        if " " in q:
            q = '"' + q.replace("\\", "\\\\").replace('"', '\\"') + '"'
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return f"{url}?{urlencode({'q': q})}"


def _substring(select: Callable[[Query], list[QuerySet]]):
    return lambda query: select(query) if query.substring else []


def _customer(obj) -> str:
    return obj.customer.name if obj.customer_id else "no customer"


def _entitlement_matches(query: Query) -> list[QuerySet]:
    selects = []
    if query.code:
        selects.append(
            Entitlement.objects.alias(_bare=bare_code("code")).filter(_bare__contains=query.code)
        )
    if query.substring:
        selects.append(holding(Entitlement, "assignee_email", query.text))
    return selects


def _ticket_matches(query: Query) -> list[QuerySet]:
    selects = []
    if query.ticket_id is not None:
        selects.append(Ticket.objects.filter(pk=query.ticket_id))
    if query.substring:
        selects += holdings(Ticket, ["subject", "requester_email"], query.text)
    return selects


def _entitlement_exact(query: Query) -> QuerySet | None:
    if not query.code:
        return None
    return Entitlement.objects.alias(_bare=bare_code("code")).filter(_bare=query.code)


def _ticket_exact(query: Query) -> QuerySet | None:
    if query.ticket_id is None:
        return None
    return Ticket.objects.filter(pk=query.ticket_id)


KINDS = [
    Kind(
        key="customers",
        label="Customers",
        icon="apartment",
        model=Customer,
        matches=_substring(lambda q: holdings(Customer, ["name", "external_id", "crm_id"], q.text)),
        exact=lambda q: None,
        order=("name", "pk"),
        related=(),
        describe=lambda c: (
            c.name,
            f"tenant {c.external_id}" + (f" · CRM {c.crm_id}" if c.crm_id else ""),
        ),
    ),
    Kind(
        key="contacts",
        label="Contacts",
        icon="contacts",
        model=Contact,
        matches=_substring(lambda q: [holding(Contact, "email", q.text)]),
        exact=lambda q: None,
        order=("email", "pk"),
        related=("customer",),
        describe=lambda c: (f"{c.name} <{c.email}>", c.customer.name),
    ),
    Kind(
        key="entitlements",
        label="Entitlements",
        icon="key",
        model=Entitlement,
        matches=_entitlement_matches,
        exact=_entitlement_exact,
        order=("code", "pk"),
        related=("customer", "product"),
        describe=lambda e: (
            e.code,
            " · ".join(
                part for part in (e.get_state_display(), e.assignee_email, e.customer.name) if part
            ),
        ),
    ),
    Kind(
        key="orders",
        label="Orders",
        icon="shopping_cart",
        model=Order,
        matches=_substring(lambda q: [holding(Order, "external_id", q.text)]),
        exact=lambda q: Order.objects.filter(external_id__iexact=q.text),
        order=("-paid_at", "pk"),
        related=("customer",),
        describe=lambda o: (o.external_id, f"{o.quantity} of {o.sku} · {_customer(o)}"),
    ),
    Kind(
        key="invoices",
        label="Invoices",
        icon="receipt_long",
        model=Invoice,
        matches=_substring(lambda q: [holding(Invoice, "number", q.text)]),
        exact=lambda q: Invoice.objects.filter(number__iexact=q.text),
        order=("-period_start", "number", "pk"),
        related=("customer",),
        describe=lambda i: (
            i.number,
            f"{i.get_status_display()} · {i.amount_due} {i.currency} · {_customer(i)}",
        ),
    ),
    Kind(
        key="tickets",
        label="Tickets",
        icon="confirmation_number",
        model=Ticket,
        matches=_ticket_matches,
        exact=_ticket_exact,
        order=("-created_at", "-pk"),
        related=("customer",),
        describe=lambda t: (
            f"#{t.pk} {t.subject}",
            " · ".join(
                part for part in (t.get_status_display(), t.requester_email, _customer(t)) if part
            ),
        ),
    ),
]


def kinds_for(user) -> list[Kind]:
    """The kinds ``user`` may view, so may search."""
    return [kind for kind in KINDS if kind.may_view(user)]


def exact_hit(*, user, query: Query) -> str | None:
    """The record page of the one record the query names exactly (a whole entitlement
    code, order id, invoice number or ticket number) among the kinds the person may view;
    None when it names none or several. One query."""
    selects = []
    for index, kind in enumerate(kinds_for(user)):
        rows = kind.exact(query)
        if rows is not None:
            selects.append(rows.order_by().annotate(_kind=Value(index)).values_list("pk", "_kind"))
    if not selects:
        return None
    hits = list(selects[0].union(*selects[1:], all=True)[:2])
    if len(hits) != 1:
        return None
    pk, index = hits[0]
    return kinds_for(user)[index].record_url(pk)


@dataclass(frozen=True)
class Group:
    kind: Kind
    count: int  # above COUNT_CAP: more than COUNT_CAP
    hits: list[Hit]
    more_url: str  # the changelist searched for the query

    @property
    def count_text(self) -> str:
        return capped_text(self.count, COUNT_CAP)


def search(*, user, query: Query, cap: int = GROUP_CAP) -> list[Group]:
    """The records matching ``query`` of each kind ``user`` may view, in groups of at
    most ``cap`` with how many matched (counted to ``COUNT_CAP``); kinds without a match
    are left out. One query per kind searched, and one more (the count) per kind that
    matched."""
    groups = []
    for kind in kinds_for(user):
        selects = kind.matches(query)
        if not selects:
            continue
        firsts = _union([select.order_by(*kind.order).values("pk")[:cap] for select in selects])
        rows = list(
            kind.model.objects.filter(pk__in=firsts)
            .select_related(*kind.related)
            .order_by(*kind.order)[:cap]
        )
        if not rows:
            continue
        # COUNT(*) of a UNION of SELECTs of at most COUNT_CAP + 1 rows each: past the
        # cap whenever one of them is, exact otherwise.
        count = _union([select.order_by().values("pk")[: COUNT_CAP + 1] for select in selects])
        hits = [Hit(*kind.describe(row), url=kind.record_url(row.pk)) for row in rows]
        groups.append(Group(kind, min(count.count(), COUNT_CAP + 1), hits, kind.list_url(query)))
    return groups


def _union(selects: list[QuerySet]) -> QuerySet:
    return selects[0].union(*selects[1:]) if len(selects) > 1 else selects[0]
