"""Callbacks of the admin theme (``UNFOLD`` in settings): header badge and sidebar."""

from django.conf import settings
from django.urls import reverse

from opsdesk.freshness import PERMISSION as FRESHNESS_PERMISSION

# (section, [(title, icon, app_label, model_name[, admin view[, permission]])]) in the order
# staff use them; the view defaults to the model's changelist. Shown to whoever has the view
# or change permission of app_label.model_name (the scorecard's is the permission
# view_scorecard), or, when the entry names one, that permission: the one its page checks.
SIDEBAR = [
    (
        "Support",
        [
            ("Triage queue", "inbox", "support", "ticket", "queue"),
            ("All tickets", "confirmation_number", "support", "ticket"),
            ("Support report", "analytics", "support", "ticket", "report"),
            ("Problems", "bug_report", "support", "problem"),
            ("Exceptions", "report", "support", "case", "inbox"),
            # Its link also tells opsdesk/saved_views.js where the views' entries come from.
            ("Saved views", "bookmarks", "opsdesk", "savedview"),
            ("Webhook events", "webhook", "support", "webhookevent"),
            ("Inbound emails", "move_to_inbox", "support", "inboundemail"),
            # When each source of outside data last delivered (opsdesk.freshness).
            (
                "Data freshness",
                "sensors",
                "support",
                "webhookevent",
                "admin:freshness",
                FRESHNESS_PERMISSION,
            ),
            ("Tags", "sell", "support", "tag"),
            ("Triage rules", "rule", "support", "triagerule"),
            ("Macros", "bolt", "support", "macro"),
            ("SLA policies", "timer", "support", "slapolicy"),
        ],
    ),
    (
        "Customers",
        [
            ("Customers", "apartment", "customers", "customer"),
            ("Contacts", "contacts", "customers", "contact"),
            ("Contracts", "contract", "customers", "contract"),
            ("Entitlements", "key", "customers", "entitlement"),
            ("Orders", "shopping_cart", "customers", "order"),
            ("Products", "inventory_2", "customers", "product"),
            ("Daily usage", "monitoring", "customers", "usagedaily"),
            # Whoever may take CRM records by hand uploads the CRM's exports and follows
            # them (customers.crm_import): the permission its pages check.
            (
                "CRM imports",
                "upload_file",
                "customers",
                "crmimport",
                "changelist",
                "customers.link_crm_account",
            ),
        ],
    ),
    (
        "Onboarding",
        [
            ("My onboarding tasks", "task_alt", "onboarding", "checklisttask", "mine"),
            ("Onboarding overview", "insights", "onboarding", "checklist", "overview"),
            ("Checklist templates", "checklist", "onboarding", "checklisttemplate"),
        ],
    ),
    (
        "Health",
        [
            ("Health signals", "vital_signs", "opsdesk", "healthsignal"),
            ("Why snoozed", "rule_settings", "opsdesk", "healthsignal", "reasons"),
            ("Digest preview", "mail", "opsdesk", "digestdelivery", "preview"),
            ("Deliveries", "outgoing_mail", "opsdesk", "digestdelivery"),
            ("Health sweeps", "event_repeat", "opsdesk", "healthsweep"),
        ],
    ),
    (
        "Billing",
        [
            ("Invoices", "receipt_long", "billing", "invoice"),
            ("Invoice imports", "upload_file", "billing", "invoiceimport"),
            ("Reconciliation runs", "balance", "billing", "reconciliationrun"),
        ],
    ),
    (
        "Audit",
        [
            ("Audit log", "history", "customers", "customer", "audit_log"),
            ("Operations scorecard", "leaderboard", "opsdesk", "scorecard", "scorecard:page"),
        ],
    ),
    (
        "Notifications",
        [
            ("My notifications", "notifications", "opsdesk", "notification"),
            ("Notification settings", "tune", "opsdesk", "notification", "preferences"),
        ],
    ),
    (
        "Administration",
        [
            ("Users", "person", "auth", "user"),
            ("Groups", "group", "auth", "group"),
        ],
    ),
]

# The signed-in person's own pages (their notifications and settings, like their
# password): every staff member's, without a model permission.
PERSONAL = {("opsdesk", "notification")}


def environment_badge(request):
    """The badge in the header, so nobody mistakes a demo for production."""
    if settings.DEBUG:
        return ["Local demo", "warning"]
    return None


def _may_open(user, app_label: str, model_name: str, view: list[str]) -> bool:
    """Whether ``user`` sees a sidebar entry: the permission it names, else the view or
    change permission of its model (a personal page: everyone)."""
    if len(view) > 1:
        return user.has_perm(view[1])
    return (
        (app_label, model_name) in PERSONAL
        or user.has_perm(f"{app_label}.view_{model_name}")
        or user.has_perm(f"{app_label}.change_{model_name}")
    )


def navigation(request):
    """The sidebar: only what the signed-in person may open."""
    user = request.user
    groups = []
    for section, entries in SIDEBAR:
        items = [
            {
                "title": title,
                "icon": icon,
                # A view named with its namespace ("scorecard:page") is a page of its own.
                "link": reverse(
                    view[0]
                    if view and ":" in view[0]
                    else f"admin:{app_label}_{model_name}_{view[0] if view else 'changelist'}"
                ),
            }
            for title, icon, app_label, model_name, *view in entries
            if _may_open(user, app_label, model_name, view)
        ]
        if items:
            groups.append({"title": section, "separator": True, "items": items})
    # The one entry whose link is the longest prefix of this page is current (the
    # queue lives under the ticket list's path, and only the queue should light up).
    entries = [item for group in groups for item in group["items"]]
    matching = [item for item in entries if request.path.startswith(item["link"])]
    current = max(matching, key=lambda item: len(item["link"]), default=None)
    for item in entries:
        item["active"] = item is current
    return groups
