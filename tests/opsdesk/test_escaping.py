"""Everything from outside is shown as text: hostile values in every text field, and no
admin page that prints one as markup."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from html.parser import HTMLParser
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import models
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from audit.context import acting_as, acting_as_user
from billing.models import Invoice, InvoiceImport
from customers.admin_workflows import WORKFLOWS
from customers.models import CrmImport, Entitlement, Order
from onboarding.services import checklist_generate
from opsdesk.audit_log.selectors import AUDITED_APPS
from opsdesk.casework.resolutions import RESOLUTIONS
from opsdesk.models import DigestDelivery, SavedView
from support.models import (
    Case,
    EmailAttachment,
    InboundEmail,
    Macro,
    Ticket,
    TicketComment,
    TriageCondition,
    TriageRule,
)
from tests import builders
from tests.admin_walk import admin_patterns
from tests.customers.crm_sender import CRM_SECRET, crm_deliver
from tests.customers.crm_sender import contract as crm_contract
from tests.records import active_contract

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


def test_the_digest_preview_shows_the_plain_text_part_as_text(client, manager):
    with acting_as("test:fixture"):
        customer = builders.customer(
            external_id="evil", name=f"Evil {SCRIPT}", account_manager=manager
        )
        active_contract(customer, end_date=dt.date(2027, 12, 31))
    client.force_login(manager)

    page = client.get(
        "/admin/opsdesk/digestdelivery/preview/", {"date": timezone.now().date().isoformat()}
    ).content.decode()

    assert SCRIPT not in page
    assert "* Evil &lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- Every text field hostile, every admin page crawled ----------------------------------

# One value carrying every trick; a field too short for all of it gets the longest start
# that fits. `javascript:` comes first, as a link needs it at the start.
PARTS = [
    "javascript:alert(1)//",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '" x-init="alert(1)',
    "' onfocus='alert(1)",
    '<div x-data x-init="alert(1)">',
]
MARK = "alert(1)"
# Not from outside: identifiers the app itself writes and reads back (a hostile value
# there is not a value anyone can enter, and the page would only fail to find the row).
APP_MADE = {
    "auth.User.password",  # a hash
    "support.Case.subject_id",  # the primary key of the row the case is about
}


def hostile(max_length: int | None, suffix: str) -> str | None:
    """The longest run of PARTS (plus ``suffix``) that fits, None when none does."""
    value = ""
    for part in PARTS:
        if max_length is not None and len(value + part + suffix) > max_length:
            break
        value += part
    return value + suffix if value else None


def hostile_json(value, suffix: str):
    """``value`` with every string in it made hostile, timestamps excepted."""
    if isinstance(value, dict):
        return {key: hostile_json(item, suffix) for key, item in value.items()}
    if isinstance(value, list):
        return [hostile_json(item, suffix) for item in value]
    if isinstance(value, str) and not is_timestamp(value):
        return hostile(None, suffix)
    return value


def is_timestamp(value: str) -> bool:
    """Dates and times in JSON were validated as such before they were stored (a
    redemption's time): they keep their format."""
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def make_everything_hostile() -> dict[str, int]:
    """Every CharField, TextField and JSONField of every row of the project's models and of
    staff users and groups made hostile (where it has no choices and is not APP_MADE), saved by
    a hostile actor with a hostile reason, so each row's history has them too: the
    number of fields filled per model."""
    filled = {}
    for model in apps.get_models():
        if model._meta.app_label not in AUDITED_APPS and model not in (User, Group):
            continue
        if model.__name__.startswith("Historical"):  # written by the saves below
            continue
        fields = [
            field
            for field in model._meta.concrete_fields
            if isinstance(field, (models.CharField, models.TextField, models.JSONField))
            and not field.choices
            and f"{model._meta.label}.{field.name}" not in APP_MADE
        ]
        for row in model._base_manager.order_by("pk"):
            for field in fields:
                # The row's id at the end keeps values unique where they must be.
                suffix = f" {row.pk}"
                if isinstance(field, models.JSONField):
                    value = hostile_json(getattr(row, field.attname), suffix)
                else:
                    value = hostile(field.max_length, suffix)
                if value is not None:
                    setattr(row, field.attname, value)
                    filled.setdefault(model._meta.label, set()).add(field.name)
            with acting_as(hostile(200, ""), reason=hostile(None, "")):
                row.save()
    return {label: len(names) for label, names in filled.items()}


class Markup(HTMLParser):
    """What a browser would run or follow in a page: hostile markup that got through."""

    ALPINE = re.compile(r"^(x-|@|:)")
    LINKS = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.shown_as_text = False
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") and MARK in value:
                self.problems.append(f"<{tag} {name}={value!r}>")
            elif self.ALPINE.match(name) and MARK in value:
                self.problems.append(f"<{tag} {name}={value!r}> (Alpine)")
            elif name in self.LINKS and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            elif tag == "iframe" and name == "srcdoc":
                inner = Markup.read(value)
                self.problems += [f"in <iframe srcdoc>: {p}" for p in inner.problems]
                self.shown_as_text |= inner.shown_as_text

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip() == MARK:
            self.problems.append(f"<script>{data}</script>")
        elif not self._in_script and MARK in data:
            self.shown_as_text = True

    @classmethod
    def read(cls, html: str) -> Markup:
        parser = cls()
        parser.feed(html)
        parser.close()
        return parser


# A route's parameters in order: `<conv:name>`, `(?P<name>...)` and unnamed `(...)` groups
# (simple-history's version page: the object's id, then the version's).
ROUTE_PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)|\(([^?][^)]*)\)")
UNNAMED = ["object_id", "history_id"]


def route_parameters(route: str) -> list[str]:
    names, unnamed = [], iter(UNNAMED)
    for converter_name, group_name, _ in ROUTE_PARAMETER.findall(route):
        names.append(converter_name or group_name or next(unnamed))
    return names


# Models whose pages differ by a field's value (a case's resolutions by its kind): a row
# of each value is crawled.
VARIETY = {Case: "kind"}


def objects_of(model) -> list:
    """The rows whose pages are crawled: the first and the last (the demo's and the
    fixtures'), and for VARIETY models one of each value."""
    rows = model._default_manager.order_by("pk")
    picked = [rows.first(), rows.last()]
    if field := VARIETY.get(model):
        for value in rows.values_list(field, flat=True).distinct():
            picked.append(rows.filter(**{field: value}).first())
    return list({row.pk: row for row in picked if row is not None}.values())


def model_of(key: str):
    """The registered model whose URL names start ``key`` (the longest such prefix)."""
    candidates = [
        model
        for model in admin.site._registry
        if key.startswith(f"{model._meta.app_label}_{model._meta.model_name}_")
    ]
    return max(candidates, key=lambda m: len(m._meta.model_name), default=None)


# Parameters other than the object's id, per URL name: every value the view knows.
PARAMETER_VALUES = {
    ("customers_entitlement_workflow", "key"): lambda obj: list(WORKFLOWS),
    ("support_case_resolve", "key"): lambda case: [
        key for kind, key in RESOLUTIONS if kind == case.kind
    ],
    ("app_list", "app_label"): lambda obj: sorted(
        {model._meta.app_label for model in admin.site._registry}
    ),
    ("support_inboundemail_attachment", "attachment_id"): lambda email: list(
        email.attachments.values_list("pk", flat=True)
    ),
}
# Query parameters pages read and may show back (filters, search, where to return):
# pages without an id in their path are also opened with each of them hostile.
REFLECTED = ("q", "recipient", "date", "actor", "customer", "model", "since", "until")
REFLECTED += ("back", "next", "target", "ids", "trace_page")
# Query strings a page needs to show anything (the entitlement workflows' selection),
# with a hostile place to return to.
QUERY = {
    "customers_entitlement_workflow": lambda obj: (
        "?" + urlencode({"ids": obj.pk, "back": hostile(None, "")})
    ),
    # A macro's preview on the ticket (the macro's name and reply, the ticket's text).
    "support_ticket_macro": lambda ticket: f"?macro={Macro.objects.order_by('pk').first().pk}",
}


def admin_urls() -> list[str]:
    """Every page of the admin site, walked from its URLconf (admin_patterns), for the
    first and last row of its model; pages without an id also with hostile parameters."""
    urls = []
    for key, route in admin_patterns():
        if key in ("catch_all", "view_on_site", "logout"):  # no page of their own
            continue
        model = model_of(key)
        needs_row = bool(route_parameters(route)) or key in QUERY
        for obj in objects_of(model) if model is not None and needs_row else [None]:
            choices = []
            for name in route_parameters(route):
                if name in ("object_id", "id"):
                    choices.append([obj.pk])
                elif name == "history_id":
                    choices.append([obj.history.first().pk])
                else:
                    assert (key, name) in PARAMETER_VALUES, f"how is {name} of {key} filled?"
                    choices.append(PARAMETER_VALUES[key, name](obj))
            for args in itertools.product(*choices):
                if key.endswith("_object"):  # the bare-id redirect has no name
                    path = reverse(f"admin:{key.removesuffix('_object')}_change", args=args)
                    path = path.removesuffix("change/")
                else:
                    path = reverse(f"admin:{key}", args=args)
                urls.append(path + QUERY.get(key, lambda obj: "")(obj))
            if not choices and key not in QUERY:
                query = dict.fromkeys(REFLECTED, hostile(None, ""))
                urls.append(reverse(f"admin:{key}") + "?" + urlencode(query))
                if key.endswith("_changelist"):  # others make the search "not understood"
                    urls.append(reverse(f"admin:{key}") + "?" + urlencode({"q": PARTS[1]}))
    return list(dict.fromkeys(urls))


@pytest.mark.parametrize(
    "template",
    ["<p>{}</p>", '<input value="{}">', "<input value='{}'>"],
    ids=["text", "double-quoted attribute", "single-quoted attribute"],
)
def test_the_check_finds_every_trick_printed_raw_and_none_escaped(template):
    value = hostile(None, "")
    assert Markup.read(template.format(value)).problems != []
    assert Markup.read(template.format(escape(value))).problems == []


def test_the_check_finds_a_javascript_link_even_escaped():
    # Escaping keeps a value inside the attribute; a link from outside needs its scheme
    # checked too (url_has_allowed_host_and_scheme), and the crawl would find it.
    assert Markup.read(f'<a href="{escape(hostile(None, ""))}">x</a>').problems != []


@pytest.fixture
def world(superuser, manager, agent, customer, templates, sla_policies, settings):
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = [CRM_SECRET]
    """The demo data, plus a row of each model and a case of each kind it lacks."""
    call_command(
        "seed_demo", "--customers=3", "--days=14", "--force", stdout=StringIO(), stderr=StringIO()
    )
    # A contract from the CRM that waits for its account (the case's subject), and Acme and
    # its contract as the CRM sent them (their pages name the CRM as the source).
    crm_event = crm_deliver(crm_contract(crm_account_id="001-NEVER"), "msg_crm")
    with acting_as("test:fixture"):
        for record in (customer, customer.contracts.get()):
            record.crm_id = record.crm_id or "800-1001"
            record.crm_updated_at = timezone.now()
            record.save()
    subjects = {
        Case.Kind.FAILED_FULFILMENT: Order.objects.first(),
        Case.Kind.PROBLEM_REDEMPTION: Entitlement.objects.first(),
        Case.Kind.CRM_UNKNOWN_ACCOUNT: crm_event,
    }
    with acting_as_user(agent):
        ticket = Ticket.objects.filter(customer=customer).first() or builders.ticket(
            customer=customer, subject="Help", message="Please"
        )
        for kind in TicketComment.Kind:
            builders.comment(ticket=ticket, kind=kind, author=agent, body="Noted")
        for email in InboundEmail.objects.all():
            EmailAttachment.objects.create(
                inbound=email, filename="notes.txt", content_type="text/plain", content=b"x", size=1
            )
    with acting_as("test:fixture"):
        # Its page shows its tickets and their customers; its update page, the requesters.
        builders.problem(
            tickets=[ticket, builders.ticket(customer=customer, requester_email="pat@acme.com")]
        )
        rule = TriageRule.objects.create(name="VIP first", assign_queue="vip")
        # Its reply shows the ticket's and the customer's (hostile) text on its preview.
        Macro.objects.create(
            name="Escalate",
            reply="{requester_name} {customer} {ticket_subject} {new_code}",
            workflow=Macro.Workflow.REISSUE_CODE,
            set_queue="escalations",
        )
        TriageCondition.objects.create(
            rule=rule, field="subject", operator="contains", value="urgent"
        )
        DigestDelivery.objects.create(
            digest_date=dt.date(2026, 11, 2),
            recipient_key=f"user:{manager.pk}",
            recipient=manager,
            email=manager.email,
            subject="Usage digest",
            error="SMTPServerDisconnected: gone",
        )
        builders.notification(recipient=superuser, error="SMTPServerDisconnected: gone")
        # A failed import: its file name and error on its pages and the freshness panel.
        InvoiceImport.objects.create(
            file_name="export.csv", status=InvoiceImport.Status.FAILED, rejected=1, error="line 2"
        )
        # A CRM import with rows rejected: its file names, rows and messages on its pages.
        CrmImport.objects.create(
            accounts_file_name="accounts.csv",
            contracts_file_name="contracts.csv",
            status=CrmImport.Status.ROWS_REJECTED,
            progress=100,
            counts={"accounts": {"created": 1, "changed": 0, "unchanged": 0, "stale": 0}},
            rejected=1,
            notes=[
                {
                    "file": "accounts",
                    "line": 2,
                    "crm_id": "001X",
                    "rejected": True,
                    "message": "name: Field required",
                }
            ],
            error="line 2",
        )
        # Its name and filters made hostile: on the queue, the sidebar and its own pages.
        SavedView.objects.create(
            owner=superuser, page="queue", name="Urgent", query="priority=urgent", shared=True
        )
        for kind in Case.Kind:
            builders.case(
                kind=kind,
                customer=customer,
                subject=subjects.get(kind, Invoice.objects.first()),
                summary=f"A {kind} case",
                expected="this",
                found="that",
                details={"note": "as found"},
                dedupe_key=f"test:{kind}",
            )
    checklist_generate(contract=customer.contracts.get())


def test_no_admin_page_shows_hostile_text_as_markup(world, superuser):
    empty = [m._meta.label for m in admin.site._registry if not m._default_manager.exists()]
    assert empty == []  # a page of a model without rows would be crawled without data
    filled = make_everything_hostile()
    client = Client(raise_request_exception=False)
    client.force_login(superuser)

    statuses, problems, shown = {}, [], []
    for url in admin_urls():
        response = client.get(url)
        statuses[url] = response.status_code
        if response.status_code >= 500:
            problems.append(f"{url}: {response.status_code}")
        if response.streaming or "html" not in response.get("Content-Type", ""):
            continue
        page = Markup.read(response.content.decode())
        problems += [f"{url}: {problem}" for problem in page.problems]
        if page.shown_as_text:
            shown.append(url)

    assert problems == []
    # The seeding reached every page, and the pages showed it as text.
    assert sum(filled.values()) >= 60, filled
    assert len(shown) >= 250, sorted(set(statuses) - set(shown))
    for name in (
        "customers_customer_changelist",
        "support_ticket_changelist",
        "customers_customer_audit_log",
        "opsdesk_digestdelivery_preview",
        "opsdesk_notification_changelist",
        "support_case_inbox",
        "support_ticket_queue",
        "onboarding_checklisttask_mine",
        "freshness",  # the latest failed import's error
    ):
        assert reverse(f"admin:{name}") in shown, name
