"""The admin's index page as each person's home (docs/product.md#home): the theme's
dashboard callback (``UNFOLD["DASHBOARD_CALLBACK"]``) puts the sections of the person's
roles in the context of ``templates/admin/index.html``.

A section is shown to the members of its group (a superuser sees all three); within it a
widget is shown only if the person may open the page it links to. Somebody in no group
gets a short home with their own pages, never Django's list of apps.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from kit import roles
from opsdesk.health.filters import health_date
from opsdesk.home import selectors
from support.case_age import age_text


def _groups(user) -> set[str]:
    if user.is_superuser:
        return {roles.SUPPORT, roles.ACCOUNT_MANAGERS, roles.OPS_LEADS}
    return set(user.groups.values_list("name", flat=True))


def _support(user, now) -> dict | None:
    widgets = {}
    if user.has_perm("support.view_ticket"):
        widgets["queue"] = selectors.support_queue_tallies(user=user, now=now)
    webhooks = user.has_perm("support.view_webhookevent")
    emails = user.has_perm("support.view_inboundemail")
    if webhooks or emails:
        widgets["failed"] = selectors.failed_input_tallies(webhooks=webhooks, emails=emails)
    return widgets or None


def _accounts(user, today) -> dict | None:
    widgets = {}
    if user.has_perm("customers.view_customer"):
        widgets["attention"] = selectors.customers_needing_attention(user=user, date=health_date())
    if user.has_perm("customers.view_contract"):
        widgets["renewals"] = selectors.renewals_coming(user=user, today=today)
    if user.has_perm("onboarding.view_checklisttask"):
        widgets["onboarding"] = selectors.onboarding_tallies(user=user, today=today)
    if user.has_perm("support.view_case"):
        widgets["cases"] = selectors.my_customers_cases_tally(user=user)
    return widgets or None


def _ops(user, now, today) -> dict | None:
    widgets = {}
    if user.has_perm("support.view_case"):
        widgets["exceptions"] = selectors.exceptions_by_age(now=now)
    if user.has_perm("billing.view_reconciliationrun") and user.has_perm("support.view_case"):
        widgets["reconciliation"] = selectors.reconciliation_months(today=today)
    if user.has_perm("support.view_webhookevent"):
        widgets["failed"] = selectors.failed_input_tallies(emails=False)
    if user.has_perm("support.view_ticket") and user.has_perm("support.view_case"):
        widgets["owners"] = selectors.work_per_owner()
    return widgets or None


def home_sections(user, *, now=None) -> dict:
    """The sections of ``user``'s home, by role: ``support``, ``accounts``, ``ops`` (each a
    dict of widgets, absent when the person has none), and ``personal`` links for
    everyone."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    groups = _groups(user)
    sections = {}
    if roles.SUPPORT in groups and (support := _support(user, now)):
        sections["support"] = support
    if roles.ACCOUNT_MANAGERS in groups and (accounts := _accounts(user, today)):
        sections["accounts"] = accounts
    if roles.OPS_LEADS in groups and (ops := _ops(user, now, today)):
        sections["ops"] = ops
    return sections


def dashboard_callback(request, context: dict) -> dict:
    """The theme's hook on the index page: the person's home instead of the app list."""
    user = request.user
    today = timezone.localdate()
    home = home_sections(user)
    tables = {}
    accounts, ops = home.get("accounts", {}), home.get("ops", {})
    if "attention" in accounts:
        tables["attention"] = attention_table(accounts["attention"])
    if "renewals" in accounts:
        tables["renewals"] = renewals_table(accounts["renewals"], today)
    if "exceptions" in ops:
        tables["exceptions"] = exceptions_table(ops["exceptions"])
    if "reconciliation" in ops:
        tables["reconciliation"] = reconciliation_table(ops["reconciliation"])
    if "owners" in ops:
        tables["owners"] = owners_table(ops["owners"])
    context.update(
        home=home,
        home_tables=tables,
        home_links={
            "notifications": reverse("admin:opsdesk_notification_changelist"),
            "notification_settings": reverse("admin:opsdesk_notification_preferences"),
            "password": reverse("admin:password_change"),
        },
        search_url=reverse("admin:index") + "search/",
    )
    return context


# --- Tables for the theme's table component (cells are escaped here, shown as they are) --

# Rows a list widget shows; its count links to all of them.
SHOWN = 8


def count_cell(tally: selectors.Tally):
    """A count, linked to the page of its rows when there is one; zero is quiet."""
    tone = {
        "danger": "text-red-700 dark:text-red-400",
        "warning": "text-orange-700 dark:text-orange-400",
    }.get(tally.tone, "text-primary-600 dark:text-primary-500")
    if tally.url and tally.count:
        return format_html(
            '<a href="{}" class="font-semibold {}" data-testid="tally-{}" data-count="{}"'
            ' title="{}">{}</a>',
            tally.url,
            tone,
            tally.key,
            tally.count,
            tally.label,
            tally.figure,
        )
    return format_html(
        '<span class="text-font-subtle-light dark:text-font-subtle-dark" data-testid="tally-{}"'
        ' data-count="{}">{}</span>',
        tally.key,
        tally.count,
        tally.figure,
    )


def _link(url: str, text: str):
    return format_html(
        '<a href="{}" class="text-primary-600 dark:text-primary-500">{}</a>', url, text
    )


def _labels(flags) -> str:
    """The flags as the theme's labels on a wide screen; on a narrow one, where a table
    cell is one line high, as one line of text (each reason in its tooltip)."""
    return format_html(
        '<span class="hidden flex-wrap gap-1 lg:flex">{}</span>'
        '<span class="truncate lg:hidden" title="{}">{}</span>',
        format_html_join(
            " ",
            '<span class="inline-block font-semibold rounded-default text-[11px] uppercase '
            "whitespace-nowrap h-6 leading-6 px-2 bg-orange-100 text-orange-700 "
            'dark:bg-orange-500/20 dark:text-orange-400" title="{}">{}</span>',
            ((flag.reason, flag.label) for flag in flags),
        ),
        "; ".join(flag.reason for flag in flags),
        ", ".join(flag.label for flag in flags),
    )


def _subtle(text: str):
    return format_html(
        '<span class="text-font-subtle-light dark:text-font-subtle-dark">{}</span>', text
    )


def _signal_cell(line) -> str:
    """The signal's label (its latest reason on hover) and, when somebody handles it, who:
    on a narrow screen one line of text, as the flags'."""
    signal = line.signal
    handled = f" · being handled by {line.handled_by}" if line.handled_by else ""
    return format_html(
        '<span class="truncate" title="{}">{}{}</span>',
        signal.reason,
        signal.label,
        _subtle(handled) if handled else "",
    )


def _age_cell(line):
    if line.is_new:
        return format_html(
            '<span class="font-semibold text-orange-700 dark:text-orange-400">{}</span>',
            line.age_text,
        )
    return line.age_text


def attention_table(attention: selectors.Attention) -> dict:
    if attention.live:
        return {
            "headers": ["Customer", "Why"],
            "rows": [
                [_link(url, health.name), _labels(health.flags)]
                for health, url in attention.customers[:SHOWN]
            ],
            # Today's sweep has not run: the flags, not the signals (which say who handles
            # what and what is snoozed).
            "note": format_html(
                '<span class="text-xs text-font-subtle-light dark:text-font-subtle-dark" '
                'data-testid="attention-live" title="{}">as of the live rules</span>',
                "Today's signals are not swept yet: these are the digest's flags, computed now.",
            ),
        }
    rows = [
        [
            _link(f"{url}#signals", line.signal.customer.name),
            _signal_cell(line),
            _age_cell(line),
        ]
        for line, url in attention.signals[:SHOWN]
    ]
    return {"headers": ["Customer", "Signal", "Open for"], "rows": rows}


def renewals_table(renewals: selectors.Renewals, today) -> dict:
    rows = []
    for contract in renewals.contracts[:SHOWN]:
        left = (contract.end_date - today).days
        rows.append(
            [
                _link(
                    reverse("admin:customers_customer_change", args=[contract.customer_id]),
                    contract.customer.name,
                ),
                contract.get_plan_display(),
                format_html(
                    "{} <span class='text-font-subtle-light dark:text-font-subtle-dark'>({})"
                    "</span>",
                    f"{contract.end_date.day} {contract.end_date:%b %Y}",
                    "today" if left == 0 else f"in {left} d",
                ),
            ]
        )
    return {"headers": ["Customer", "Plan", "Ends"], "rows": rows}


def exceptions_table(rows: list[selectors.KindAges]) -> dict:
    table_rows = []
    for row in rows:
        oldest = ""
        if row.oldest is not None:
            case = row.oldest
            text = f"#{case.pk} {case.customer.name if case.customer else case.summary}"
            url = reverse("admin:support_case_change", args=[case.pk])
            age = age_text(case)
            # On a narrow screen a table cell is one line high (the theme's): one line,
            # cut, the whole in its tooltip, as _labels does.
            oldest = format_html(
                '<span class="hidden lg:block">{} <span class="text-font-subtle-light '
                'dark:text-font-subtle-dark">{} ago</span></span>'
                '<a href="{}" class="truncate text-primary-600 dark:text-primary-500 lg:hidden"'
                ' title="{}, {} ago">{}, {} ago</a>',
                _link(url, text),
                age,
                url,
                text,
                age,
                text,
                age,
            )
        label = format_html("<strong>{}</strong>", row.label) if row.kind == "all" else row.label
        table_rows.append(
            [label, *(count_cell(t) for t in row.buckets), count_cell(row.total), oldest]
        )
    buckets = [label for label, _, _ in selectors.AGE_BUCKETS]
    return {"headers": ["Kind", *buckets, "All", "Oldest"], "rows": table_rows}


def reconciliation_table(months: list[selectors.MonthReconciliation]) -> dict:
    rows = []
    for month in months:
        run = month.run
        if run is None:
            status = mark_safe(
                '<span class="text-font-subtle-light dark:text-font-subtle-dark">Not run yet</span>'
            )
        else:
            tone = {
                run.Status.SUCCEEDED: "success",
                run.Status.FAILED: "danger",
                run.Status.RUNNING: "info",
            }[run.status]
            when = timezone.localtime(run.finished_at or run.started_at)
            status = format_html(
                '<a href="{}" data-testid="run-{}">{}</a> <span class="text-font-subtle-light '
                'dark:text-font-subtle-dark">{}</span>',
                month.run_url,
                f"{month.month:%Y-%m}",
                render_to_string(
                    "unfold/helpers/label.html",
                    {"text": run.get_status_display(), "variant": tone},
                ),
                f"{when.day} {when:%b %H:%M}",
            )
        which = "this month" if month is months[0] else "last month"
        label = format_html(
            '{} <span class="text-font-subtle-light dark:text-font-subtle-dark">({})</span>',
            f"{month.month:%B %Y}",
            which,
        )
        rows.append([label, status, count_cell(month.findings)])
    return {"headers": ["Month", "Latest run", "Open findings"], "rows": rows}


def owners_table(rows: list[selectors.OwnerWork]) -> dict:
    return {
        "headers": ["Person", "Open tickets", "Open cases"],
        "rows": [[row.name, count_cell(row.tickets), count_cell(row.cases)] for row in rows],
    }
