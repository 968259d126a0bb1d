"""``python -m bench search``: the global search (``/admin/search/?q=``, opsdesk.search)
on the large demo database (10,000 customers, 1,000,000 more tickets) next to the small
one, measured as ``bench.pages`` measures the admin's pages (same databases, same
terms: the customer with the most tickets on the small one; same counted and timed
requests).

The searches: a customer's whole name, its primary contact's email, the part of an
entitlement code a person reads off first (8 characters, no dashes), words of one of its
tickets' subjects, and a whole code typed without dashes (an exact hit: the page answers
with a redirect to the entitlement, 302).

Held to, per search: large/small median at most 1.5, no unbounded ``COUNT(*)``, and every
``LIKE`` statement able to read a ``gin_trgm_ops`` index (``bench.pages``). Writes
``var/bench/search-<timestamp>.json``.
"""

from __future__ import annotations

from bench import pages
from bench.pages import Page
from bench.report import Row


def _subject_words(tenant: str) -> str:
    from support.models import Ticket

    subject = (
        Ticket.objects.filter(customer__external_id=tenant)
        .order_by("pk")
        .values_list("subject", flat=True)
        .first()
    )
    return " ".join((subject or "").split()[:3])


def search_pages(terms: dict[str, str]) -> list[Page]:
    from urllib.parse import urlencode

    from django.urls import reverse

    from customers.codes import redemption_code_bare

    def url(q: str) -> str | None:
        return f"{reverse('search')}?{urlencode({'q': q})}" if q else None

    code = redemption_code_bare(terms["code"])
    return [
        Page("search: customer name", url(terms["name"]), True),
        Page("search: contact email", url(terms["email"]), True),
        Page("search: part of a code", url(code[:8]), True),
        Page("search: ticket subject", url(_subject_words(terms["tenant"])), True),
        Page("search: whole code (opens it)", url(code.lower()), status=302),
    ]


def main() -> list[Row]:
    return pages.main(bench="search", make_pages=search_pages)


if __name__ == "__main__":
    from bench.report import markdown

    print(markdown(main(), title="search"))
