"""``python -m bench pages``: the admin pages at scale, each next to itself at small scale.

Each page is fetched with Django's test client, logged in as the demo superuser
``admin``, from the large demo database (``bench.dataset``: 10,000 customers, a year of
usage, 1,000,000 more tickets) and from the small one (200 customers, a few thousand
tickets): one counted request (``CaptureQueriesContext``: the number of queries and
their SQL), then BENCH_PAGE_RUNS timed requests (wall time of the whole request; median
and p95). The pages: the home (the superuser's, with every role's widgets), the
customer list, one customer's page and audit timeline (the
customer of demo index 0, in both databases), the triage queue (by risk) unfiltered,
mine, overdue and filtered,
the ops inbox, and the changelist searches (``?q=``) of customers, tickets, contacts and
entitlements by a customer's name, a contact's email and an entitlement code, the terms
taken from that customer.

Held to, per page: large/small median at most 1.5 (the page's cost does not grow with the
data) and no unbounded ``COUNT(*)`` (a ``COUNT(*)`` whose statement has no ``LIMIT``; the
admin's ``CappedCountPaginator`` counts a ``LIMIT``-ed subquery). Per search: its
statement, explained at large scale, reads a trigram (``gin_trgm_ops``) index. A page
that does not exist yet (no URL) is reported as missing. Writes
``var/bench/pages-<timestamp>.json`` with the queries of each page.

Knobs: BENCH_PAGE_RUNS (15), and ``bench.dataset``'s.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import time
from dataclasses import asdict, dataclass, field

from bench import RunFiles, database_server, dataset, knob, say
from bench.report import Row

TARGET_RATIO = 1.5
USER = "admin"
# A statement that counts a whole result: ``SELECT COUNT(*) ...`` at the top. The admin's
# capped count is ``SELECT COUNT(*) FROM (SELECT ... LIMIT n) subquery``: bounded.
COUNT_STAR = re.compile(r"^\s*SELECT\s+COUNT\(\*\)", re.IGNORECASE)
LIMITED = re.compile(r"\bLIMIT\s+\d+", re.IGNORECASE)


@dataclass
class Page:
    name: str
    url: str | None  # None: the page does not exist (yet)
    search: bool = False
    status: int = 200  # what it answers (a search's exact hit redirects: 302)


@dataclass
class Fetch:
    """One page fetched on one database."""

    status: int
    queries: int
    sql: list[str] = field(repr=False)
    sql_ms: float = 0.0  # the counted request's time in PostgreSQL (as Django measured it)
    rows: int = 0  # changelist rows listed (their action checkboxes)
    seconds: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000

    def unbounded_counts(self) -> list[str]:
        return [sql for sql in self.sql if COUNT_STAR.search(sql) and not LIMITED.search(sql)]

    def summary(self) -> dict:
        return {
            **asdict(self),
            "median_ms": round(self.median_ms, 2),
            "p95_ms": round(self.p95_ms, 2),
        }


def _terms(tenant: str | None = None) -> dict[str, str]:
    """The customer the pages look at and search terms taken from it: the customer of
    tenant id ``tenant``, else (on the small database) the one with the most tickets, so
    that a search of its tickets fills a page at both scales. ``seed_demo`` derives each
    customer from its index: the same customer, contacts and codes in both databases.
    Whole names and addresses, as someone looking one up pastes them."""
    from django.db.models import Count

    from customers.models import Contact, Customer, Entitlement

    customers = Customer.objects.annotate(ticket_count=Count("tickets")).order_by(
        "-ticket_count", "pk"
    )
    customer = customers.get(external_id=tenant) if tenant else customers.first()
    contact = Contact.objects.filter(customer=customer).order_by("-is_primary", "pk").first()
    entitlement = Entitlement.objects.filter(customer=customer).order_by("pk").first()
    return {
        "tenant": customer.external_id,
        "customer_id": str(customer.pk),
        "name": customer.name,
        # Quoted: the whole name is one term (unquoted, each word must match, and a word
        # under three letters, like "AG", matches by scanning: trigrams need three).
        "quoted_name": f'"{customer.name}"',
        "email": contact.email if contact else "",
        "code": entitlement.code if entitlement else "",
    }


def _pages(terms: dict[str, str]) -> list[Page]:
    from urllib.parse import urlencode

    from django.urls import NoReverseMatch, reverse

    def url(name: str, *args, **query) -> str | None:
        try:
            path = reverse(f"admin:{name}", args=args)
        except NoReverseMatch:
            return None
        return path + (f"?{urlencode(query)}" if query else "")

    customer, name = terms["customer_id"], terms["quoted_name"]
    return [
        # The superuser's home holds every role's widgets (opsdesk.home).
        Page("home, every role's widgets", url("index")),
        Page("customer list", url("customers_customer_changelist")),
        Page("customer page", url("customers_customer_change", customer)),
        Page("audit timeline", url("customers_customer_audit", customer)),
        # The queue by risk (support.filters.QueueOrder): breached and about to breach
        # first, by priority, then the nearest deadline, then the rest; and "my tickets",
        # the same order for the signed-in person.
        Page("triage queue", url("support_ticket_queue")),
        Page("triage queue, my tickets", url("support_ticket_queue", assignee="me")),
        Page("triage queue, overdue", url("support_ticket_queue", overdue="true")),
        Page(
            "triage queue, filtered",
            url("support_ticket_queue", priority="high", customer=terms["name"]),
        ),
        Page("ops inbox", url("support_case_inbox")),
        Page("customers: search name", url("customers_customer_changelist", q=name), True),
        Page(
            "customers: search email", url("customers_customer_changelist", q=terms["email"]), True
        ),
        Page("tickets: search name", url("support_ticket_changelist", q=name), True),
        Page("tickets: search email", url("support_ticket_changelist", q=terms["email"]), True),
        Page("contacts: search name", url("customers_contact_changelist", q=name), True),
        Page("contacts: search email", url("customers_contact_changelist", q=terms["email"]), True),
        Page(
            "entitlements: search code",
            url("customers_entitlement_changelist", q=terms["code"]),
            True,
        ),
    ]


def _client():
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username=USER))
    return client


def _wrappers(urls: dict[str, str]) -> dict[str, object]:
    """A database connection per scale, kept open between requests (as ``CONN_MAX_AGE``
    keeps them in production); ``_switch`` makes one Django's default connection."""
    import copy

    import dj_database_url
    from django.db import connections

    wrappers = {}
    for scale, url in urls.items():
        wrapper = connections.create_connection("default")
        wrapper.settings_dict = copy.deepcopy(wrapper.settings_dict)
        parsed = dj_database_url.parse(url)
        for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
            wrapper.settings_dict[key] = parsed[key]
        # Its own connection, not the process's pool: pools are one per alias, so every
        # scale's wrapper would borrow from the first one's database.
        wrapper.settings_dict["OPTIONS"].pop("pool", None)
        wrapper.settings_dict["CONN_MAX_AGE"] = None
        wrappers[scale] = wrapper
    return wrappers


def _switch(wrapper) -> None:
    from django.db import connections

    connections["default"] = wrapper


def _content_types() -> set[tuple]:
    from django.contrib.contenttypes.models import ContentType

    return set(ContentType.objects.values_list("pk", "app_label", "model"))


def _measure(
    urls: dict[str, str], runs: int, make_pages=None
) -> tuple[dict[str, dict[str, str]], dict[str, list[Page]], dict[str, dict[str, Fetch]]]:
    """Every page on every database (``urls``: scale -> database URL): one counted request
    each, then ``runs`` timed rounds, each round fetching the page from every database in
    turn, so that whatever else loads the machine weighs on both scales alike."""
    dataset.use(next(iter(urls.values())))
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    wrappers = _wrappers(urls)
    terms, pages, clients, types = {}, {}, {}, set()
    for scale in urls:
        _switch(wrappers[scale])
        ContentType.objects.clear_cache()
        types.add(frozenset(_content_types()))
        terms[scale] = _terms(terms["small"]["tenant"] if terms else None)
        pages[scale] = (make_pages or _pages)(terms[scale])
        clients[scale] = _client()  # its session lives in this database
    same_types = len(types) == 1  # else the cached content types must go at each switch

    def get(scale: str, url: str):
        _switch(wrappers[scale])
        if not same_types:
            ContentType.objects.clear_cache()
        return clients[scale].get(url, secure=True)

    fetched: dict[str, dict[str, Fetch]] = {scale: {} for scale in urls}
    # The bench renders pages without ``collectstatic``: plain static URLs, no manifest.
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    with override_settings(STORAGES={**settings.STORAGES, "staticfiles": static}):
        names = [page.name for page in next(iter(pages.values()))]
        for number, name in enumerate(names):
            targets = {scale: next(p.url for p in pages[scale] if p.name == name) for scale in urls}
            if None in targets.values():
                continue
            for scale, url in targets.items():
                get(scale, url)  # warm: this page's templates and caches
                with CaptureQueriesContext(connection) as captured:
                    response = clients[scale].get(url, secure=True)
                fetched[scale][name] = Fetch(
                    response.status_code,
                    len(captured),
                    [q["sql"] for q in captured],
                    sql_ms=sum(float(q["time"]) for q in captured) * 1000,
                    rows=response.content.count(b'name="_selected_action"'),
                )
            for _ in range(runs):
                for scale, url in targets.items():
                    started = time.perf_counter()
                    get(scale, url)
                    fetched[scale][name].seconds.append(time.perf_counter() - started)
            say(f"  {number + 1}/{len(names)} {name}")
    _switch(wrappers["large"])
    return terms, pages, fetched


def _search_statements(fetch: Fetch) -> list[str]:
    """The statements of a search that match text (``LIKE``): the rows, their capped
    count and any ids resolved first (``IndexedSearchMixin``)."""
    return [sql for sql in fetch.sql if " LIKE " in sql.upper()]


def _plan(sql: str, *, seqscan: bool = True) -> str:
    """``EXPLAIN`` of ``sql``; with ``seqscan=False`` the plan PostgreSQL makes when it
    must match through an index if one can serve the condition at all."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        if not seqscan:  # only bitmap scans, which need an index condition, are left
            for scan in ("seqscan", "indexscan", "indexonlyscan"):
                cursor.execute(f"SET LOCAL enable_{scan} = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _trigram_indexes() -> dict[str, str]:
    """Every ``gin_trgm_ops`` index: name -> definition."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE indexdef LIKE '%%gin_trgm_ops%%'"
        )
        return dict(cursor.fetchall())


def _detail(fetch: Fetch) -> str:
    """The time spent in SQL, and the rows listed where the page is a list: a page of 50
    rows against one of 24 is not the same work, whatever the database size."""
    rows = f", {fetch.rows} row{'' if fetch.rows == 1 else 's'}" if fetch.rows else ""
    return f" (SQL {fetch.sql_ms:.0f} ms{rows})"


def _row(
    page: Page, large: Fetch | None, small: Fetch | None, small_customers: int, bench: str = "pages"
) -> Row:
    if page.url is None or large is None or small is None:
        return Row.check(bench, page.name, "missing (no such page yet)", False, "exists")
    if large.status != page.status or small.status != page.status:
        return Row.failed(bench, f"{page.name}: HTTP {large.status} (small {small.status})")
    counts = large.unbounded_counts()
    row = Row.held(
        bench, page.name,
        f"{large.median_ms:.0f} ms, p95 {large.p95_ms:.0f}, {large.queries} q{_detail(large)}",
        f"{small.median_ms:.0f} ms, p95 {small.p95_ms:.0f}, {small.queries} q{_detail(small)} "
        f"({small_customers} customers)",
        large.median_ms / small.median_ms, TARGET_RATIO,
    )  # fmt: skip
    if counts:
        row.measured += f"; {len(counts)} unbounded COUNT(*)"
        row.met = False
    return row


def main(*, bench: str = "pages", make_pages=None) -> list[Row]:
    """``make_pages``: the pages to measure from the terms (``_pages``'s, by default);
    ``bench``: the name of the run's files and rows (``bench.search`` measures its own)."""
    runs = knob("BENCH_PAGE_RUNS", 15)
    files = RunFiles(bench)
    env = dict(os.environ)
    with contextlib.ExitStack() as cleanup:
        server = database_server(env, cleanup)
        big = dataset.prepare(server, dataset.large())
        small = dataset.prepare(server, dataset.small())
        from django.db import connections

        say(f"{bench}: {runs} timed rounds each, interleaving the two databases")
        terms, all_pages, fetched = _measure(
            {"small": small["url"], "large": big["url"]}, runs, make_pages
        )
        pages, small_fetched, big_fetched = all_pages["large"], fetched["small"], fetched["large"]
        cleanup.callback(connections.close_all)
        indexes = _trigram_indexes()
        plans: dict[str, list[str]] = {}
        forced: dict[str, list[str]] = {}
        for page in pages:
            if page.search and page.name in big_fetched:
                statements = _search_statements(big_fetched[page.name])
                plans[page.name] = [_plan(sql) for sql in statements]
                forced[page.name] = [_plan(sql, seqscan=False) for sql in statements]

    rows: list[Row] = []
    for page in pages:
        large_fetch, small_fetch = big_fetched.get(page.name), small_fetched.get(page.name)
        rows.append(_row(page, large_fetch, small_fetch, small["customers"], bench))
    for name, page_plans in plans.items():
        # Held: every LIKE statement can read a trigram index (the lookup and the index
        # expression match). Reported: the statements the planner still runs as a scan,
        # its choice for a small table or a term most rows match.
        usable = [sorted(i for i in indexes if i in plan) for plan in forced[name]]
        chosen = [sorted(i for i in indexes if i in plan) for plan in page_plans]
        names = sorted({index for found in chosen + usable for index in found})
        unusable = sum(not found for found in usable)
        scans = sum(not found for found in chosen)
        measured = ", ".join(names) or "none"
        if scans:
            measured += f"; the planner scans for {scans} of {len(chosen)} LIKE statements"
        if unusable:
            measured += f"; {unusable} cannot use one"
        rows.append(
            Row.check(
                bench, f"{name}: trigram index", measured if usable else "no LIKE statement",
                bool(usable) and not unusable, "every LIKE can read a gin_trgm_ops index",
            )
        )  # fmt: skip
    print(f"{'page':<30}{'large ms':>9}{'p95':>7}{'q':>4}{'small ms':>9}{'p95':>7}{'q':>4}")
    for page in pages:
        b, s = big_fetched.get(page.name), small_fetched.get(page.name)
        if b and s:
            print(
                f"{page.name:<30}{b.median_ms:>9.1f}{b.p95_ms:>7.1f}{b.queries:>4}"
                f"{s.median_ms:>9.1f}{s.p95_ms:>7.1f}{s.queries:>4}"
            )
        else:
            print(f"{page.name:<30} missing")
    result = {
        "timestamp": files.stamp,
        "runs": runs,
        "terms": terms["large"],
        "databases": {
            db["name"]: {k: v for k, v in db.items() if k not in ("name", "url")}
            for db in (big, small)
        },
        "pages": {
            page.name: {
                "url": page.url,
                "large": big_fetched[page.name].summary() if page.name in big_fetched else None,
                "small": small_fetched[page.name].summary() if page.name in small_fetched else None,
            }
            for page in pages
        },
        "trigram_indexes": indexes,
        "search_plans": plans,
        "search_plans_without_seqscan": forced,
        "rows": [asdict(row) for row in rows],
    }
    files.write_results(result)
    return rows


if __name__ == "__main__":
    from bench.report import markdown

    print(markdown(main(), title="pages"))
