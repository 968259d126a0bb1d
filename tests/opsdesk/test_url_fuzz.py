"""No URL answers hostile input with a 5xx: a user error is a 4xx, a
form error or a redirect with a message, never a traceback.

Every pattern of the URLconf is walked (``get_resolver()``: the admin site with its
custom views, simple-history's version pages and unfold's detail actions, the webhook and
``healthz``), filled with real ids from one small world, and then:

- each path segment a converter or group captures is replaced in turn by hostile text
  (GET as the superuser, POST with the first few, GET anonymously with one);
- every page is opened with hostile query strings: every parameter name the custom
  views, FilterSets and changelist filters read, all at once; then each name the page
  was seen reading (recorded on a plain GET) and each changelist filter, alone;
- every page gets a POST whose every field holds hostile text, as the superuser and
  anonymously.

Every 5xx is collected, with its exception, and reported in one assertion message. About
6,000 requests, one test per part of the URLconf so pytest-xdist spreads them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sys
from urllib.parse import urlencode

import django_filters
import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.signals import got_request_exception
from django.db import transaction
from django.http import QueryDict
from django.test import Client, RequestFactory
from django.urls import URLResolver, get_resolver
from django.utils.datastructures import MultiValueDict

from audit.context import acting_as
from billing.models import InvoiceImport, ReconciliationRun
from customers.models import (
    Contact,
    Contract,
    CrmImport,
    Entitlement,
    Order,
    Product,
    UsageDaily,
)
from kit import roles
from onboarding.models import ChecklistTask, ChecklistTemplate
from onboarding.services import checklist_generate
from opsdesk.models import DigestDelivery, HealthSignal, HealthSweep, SavedView
from support.models import Case, EmailAttachment, Macro, Tag, TriageRule, WebhookEvent
from tests import builders
from tests.records import populate

pytestmark = pytest.mark.django_db

# Text a path segment may carry: not a number, beyond every integer column, not finite,
# a NUL (PostgreSQL refuses it in text), a quote, very long, not ASCII.
HOSTILE_SEGMENTS = [
    "abc",
    "-1",
    "99999999999999999999",
    "1e400",
    "%00",
    "%27%22",
    "x" * 3000,
    "%C3%BC%E5%90%8D",
]
# Values for query-string parameters, each given to every name at once: not a number,
# beyond bigint, not finite, a NUL, dates out of any useful range, a recipient key with
# no id, very long, and empty (``?_to_field=`` empty was a 500 on every change page).
HOSTILE_VALUES = [
    "abc",
    "1" + "0" * 21,
    "1e400",
    "\x00",
    "0001-01-01",
    "9999-12-31",
    "user:abc",
    "x" * 5000,
    "",
]
# Values given to each name a page reads, alone (one bad value must not hide another
# behind its error message).
ONE_AT_A_TIME = ["abc", "1" + "0" * 21, "\x00", "0001-01-01", "9999-12-31", "9999-12"]
# Form bodies: every field the pages read, holding one of these.
HOSTILE_BODIES = ["abc", "\x00", "1" + "0" * 21, "9999-12-31"]
# Names read from request.GET by the custom views (grep request.GET), the admin's own
# (changelist ordering, page, search, popup, to_field), and the confirmation pages'.
QUERY_NAMES = {
    "date",
    "since",
    "until",
    "month",
    "recipient",
    "target",
    "ids",
    "back",
    "page",
    "trace_page",
    "o",
    "p",
    "q",
    "e",
    "all",
    "_popup",
    "_to_field",
    "_changelist_filters",
    "app_label",
    "model_name",
    "field_name",
    "term",
    "next",
    "key",
    "customer",
    "actor",
    "model",
    "state",
    "kind",
    "owner",
    "age",
    "status",
    "priority",
    "tag",
    "assignee",
    "plan",
    "overdue",
    "action",
    "cases",
    "note",
    "reason",
    "email",
    "done_for",
    "body",
    "file",
    "_selected_action",
    "select_across",
    "index",
    # Saved views: "Save this view" and the sidebar's page (opsdesk.saved_views).
    "here",
    "name",
    "query",
    "shared",
    # The support report and its drill-down (support.admin_reports).
    "as_of",
    "weeks",
    "week",
    "clock",
    "person",
}


def filterset_names() -> set[str]:
    """The parameters of every FilterSet of the project (the queue, inbox, audit log)."""

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    return {
        name
        for cls in subclasses(django_filters.FilterSet)
        if cls.__module__.split(".")[0] in {"opsdesk", "customers", "support", "billing"}
        for name in cls.base_filters
    }


def changelist_names(model_admin, superuser) -> set[str]:
    """The parameters a ModelAdmin's changelist filters and date hierarchy read."""
    request = RequestFactory().get("/")
    request.user = superuser
    changelist = model_admin.get_changelist_instance(request)
    names = {name for spec in changelist.filter_specs for name in spec.expected_parameters()}
    if changelist.date_hierarchy:
        names |= {f"{changelist.date_hierarchy}__{part}" for part in ("year", "month", "day")}
    return names


@contextlib.contextmanager
def reading_names():
    """The names looked up in a QueryDict meanwhile: what a page reads of its query."""
    read: set[str] = set()
    getitem, getlist = MultiValueDict.__getitem__, MultiValueDict.getlist

    def note(self, key):
        if isinstance(self, QueryDict) and isinstance(key, str):
            read.add(key)

    def reading_getitem(self, key):
        note(self, key)
        return getitem(self, key)

    def reading_getlist(self, key, default=None):
        note(self, key)
        return getlist(self, key, default)

    def reading_contains(self, key):
        note(self, key)
        return dict.__contains__(self, key)

    MultiValueDict.__getitem__, MultiValueDict.getlist = reading_getitem, reading_getlist
    MultiValueDict.__contains__ = reading_contains
    try:
        yield read
    finally:
        MultiValueDict.__getitem__, MultiValueDict.getlist = getitem, getlist
        del MultiValueDict.__contains__


def url_patterns(patterns=None, prefix=""):
    """(name, route) of every pattern of the URLconf, nested includes flattened."""
    patterns = get_resolver().url_patterns if patterns is None else patterns
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield pattern.name, prefix + str(pattern.pattern)


PLACEHOLDER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)|\([^)]*\)")


def template_of(route: str) -> tuple[str, list[str]]:
    """``route`` as a format string with one ``{}`` per captured segment, and their names
    (unnamed regex groups are ``group1``, ``group2``...)."""
    names = []

    def slot(match):
        names.append(match[1] or match[2] or f"group{len(names) + 1}")
        return "{}"

    template = PLACEHOLDER.sub(slot, route.replace("{", "{{").replace("}", "}}"))
    return "/" + template.replace("^", "").replace("$", ""), names


@pytest.fixture
def world(db, superuser, customer, templates, sla_policies):
    """One row of every model (as the permission matrix's world), keyed by URL prefix."""
    (other,) = populate(1, start=90)
    with acting_as("test:fixture"):
        run = ReconciliationRun.objects.create(month=dt.date(2026, 10, 1))
        invoice_import = InvoiceImport.objects.create(
            file_name="invoices.csv", status=InvoiceImport.Status.FAILED, rejected=1
        )
        crm_import = CrmImport.objects.create(
            accounts_file_name="accounts.csv", status=CrmImport.Status.SUCCEEDED
        )
        rule = TriageRule.objects.create(name="VIP first")
        macro = Macro.objects.create(name="Escalate", set_queue="escalations")
        email = builders.inbound_email(ticket=other.tickets.get())
        EmailAttachment.objects.create(
            inbound=email, filename="log.txt", content_type="text/plain", content=b"x", size=1
        )
        delivery = DigestDelivery.objects.create(
            digest_date=dt.date(2026, 11, 2),
            recipient_key=f"user:{superuser.pk}",
            recipient=superuser,
            email=superuser.email,
        )
        notification = builders.notification(recipient=superuser)
        signal = HealthSignal.objects.create(
            customer=customer,
            kind="dormant",
            label="Dormant",
            opened_on=dt.date(2026, 11, 2),
            opened_reason="no login for 14 days",
            reason="no login for 14 days",
        )
        sweep = HealthSweep.objects.create(
            date=dt.date(2026, 11, 2), status="finished", claimed_at=dt.datetime.now(dt.UTC)
        )
        saved_view = SavedView.objects.create(
            owner=superuser, page="queue", name="Urgent", query="priority=urgent"
        )
        problem = builders.problem(tickets=[builders.ticket(requester_email="pat@example.com")])
    checklist = checklist_generate(contract=customer.contracts.get())
    return {
        "customers/customer/": customer,
        "customers/contact/": Contact.objects.get(customer=other),
        "customers/contract/": Contract.objects.get(customer=other),
        "customers/product/": Product.objects.get(sku="SEAT-PACK-10"),
        "customers/order/": Order.objects.get(customer=other),
        "customers/entitlement/": Entitlement.objects.filter(customer=other).first(),
        "customers/usagedaily/": UsageDaily.objects.filter(customer=other).first(),
        "customers/crmimport/": crm_import,
        "support/tag/": Tag.objects.get(name="vip"),
        "support/ticket/": other.tickets.get(),
        "support/webhookevent/": WebhookEvent.objects.first(),
        "support/inboundemail/": email,
        "support/triagerule/": rule,
        "support/macro/": macro,
        "support/problem/": problem,
        "support/slapolicy/": sla_policies["Starter"],
        "support/case/": Case.objects.get(customer=other),
        "billing/invoice/": other.invoices.get(),
        "billing/reconciliationrun/": run,
        "billing/invoiceimport/": invoice_import,
        "onboarding/checklisttemplate/": ChecklistTemplate.objects.first(),
        "onboarding/checklist/": checklist,
        "onboarding/checklisttask/": ChecklistTask.objects.filter(checklist=checklist).first(),
        "opsdesk/digestdelivery/": delivery,
        "opsdesk/healthsignal/": signal,
        "opsdesk/healthsweep/": sweep,
        "opsdesk/notification/": notification,
        "opsdesk/savedview/": saved_view,
        "auth/user/": superuser,
        "auth/group/": Group.objects.get(name=roles.SUPPORT),
    }


def valid_values(name: str | None, route: str, names: list[str], world) -> list[str]:
    """A real value for each captured segment, so the one made hostile is the only fault."""
    obj = next((o for prefix, o in world.items() if f"admin/{prefix}" in route), None)
    values = []
    for slot in names:
        if slot == "url":
            values.append("no-such-page/")
        elif slot == "app_label":
            values.append("customers")
        elif slot == "content_type_id":
            values.append(str(ContentType.objects.get_for_model(world["customers/customer/"]).pk))
        elif slot == "object_id" and name == "view_on_site":
            values.append(str(world["customers/customer/"].pk))
        elif slot == "key":
            values.append("refund" if name == "support_case_resolve" else "assign")
        elif slot in {"object_id", "id", "group1"}:
            values.append(str(obj.pk))
        elif slot == "attachment_id":
            values.append(str(obj.attachments.get().pk))
        elif slot == "group2":
            values.append(str(obj.history.first().pk))
        else:
            raise AssertionError(f"{route}: no valid value for <{slot}>; add one here")
    return values


# The URLconf in a few parts (one test each, so pytest-xdist spreads them over its
# workers); every pattern is in exactly one.
CHUNKS = ["customers", "support", "billing", "onboarding", "opsdesk", "auth", "rest"]


def chunk_of(template: str) -> str:
    match = re.match(r"/admin/(\w+)/", template)
    return match[1] if match and match[1] in CHUNKS else "rest"


def test_the_walker_finds_every_pattern_of_the_urlconf():
    patterns = [template_of(route)[0] for _, route in url_patterns()]
    assert len(patterns) > 150
    assert {"/healthz", "/webhooks/product/", "/webhooks/crm/", "/admin/"} <= set(patterns)
    assert {chunk_of(template) for template in patterns} == set(CHUNKS)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_every_url_answers_hostile_input_without_a_5xx(world, superuser, chunk):
    patterns = [(name, *template_of(route)) for name, route in url_patterns()]
    custom_names = QUERY_NAMES | filterset_names()
    changelist_params = {
        f"{model._meta.app_label}/{model._meta.model_name}/": changelist_names(
            model_admin, superuser
        )
        for model, model_admin in admin.site._registry.items()
    }

    root = Client(raise_request_exception=False)
    root.force_login(superuser)
    anonymous = Client(raise_request_exception=False)
    failures: list[str] = []
    errors: list[str] = []
    tried = 0

    def record(sender, request, **kwargs):
        error = sys.exc_info()[1]
        errors.append(f"{type(error).__name__}: {str(error)[:100]}")

    got_request_exception.connect(record)

    def request(client, method, url, data=None):
        nonlocal tried
        tried += 1
        # A request runs in its own transaction in production: a database error in one
        # must not abort the test's transaction and fail every request after it.
        savepoint = transaction.savepoint()
        response = client.get(url, data) if method == "get" else client.post(url, data or {})
        transaction.savepoint_rollback(savepoint)
        if response.status_code >= 500:
            who = "superuser" if client is root else "anonymous"
            failures.append(
                f"{method.upper()} {url[:120]} as {who}: {response.status_code} {errors[-1:]}"
            )
        errors.clear()
        if client is root and "logout" in url:
            root.force_login(superuser)

    for name, template, slots in patterns:
        if chunk_of(template) != chunk:
            continue
        values = valid_values(name, template, slots, world)
        url = template.format(*values)
        # Hostile path segments, one captured segment at a time.
        for index in range(len(slots)):
            for segment in HOSTILE_SEGMENTS:
                hostile = template.format(*values[:index], segment, *values[index + 1 :])
                request(root, "get", hostile)
                if segment in HOSTILE_SEGMENTS[:3]:
                    request(root, "post", hostile)
            request(anonymous, "get", template.format(*values[:index], "abc", *values[index + 1 :]))
        # Hostile query strings: every name at once, then each name the page reads alone
        # (one bad value must not hide another behind its error).
        with reading_names() as read:
            request(root, "get", url)
        changelist = next(
            (params for prefix, params in changelist_params.items() if template.endswith(prefix)),
            set(),
        )
        names = custom_names | changelist
        for value in HOSTILE_VALUES:
            request(root, "get", f"{url}?{urlencode(dict.fromkeys(sorted(names), value))}")
        read = {name for name in read if isinstance(name, str) and not name.startswith("_")}
        for param in sorted(read | changelist):
            for value in ONE_AT_A_TIME:
                request(root, "get", f"{url}?{urlencode({param: value})}")
        for value in HOSTILE_BODIES:
            request(root, "post", url, dict.fromkeys(sorted(names), value))
        request(anonymous, "get", f"{url}?{urlencode(dict.fromkeys(names, HOSTILE_VALUES[0]))}")
        request(anonymous, "post", url, dict.fromkeys(names, HOSTILE_VALUES[0]))
    got_request_exception.disconnect(record)
    print(f"{chunk}: {tried} requests")
    assert not failures, f"{len(failures)} of {tried} requests answered 5xx:\n" + "\n".join(
        failures
    )
