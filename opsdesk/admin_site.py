"""Callbacks of the admin theme (``UNFOLD`` in settings): header badge and sidebar."""

from django.conf import settings
from django.urls import reverse

# (section, [(title, icon, app_label, model_name)]) in the order staff use them.
SIDEBAR = [
    (
        "Support",
        [
            ("Tickets", "confirmation_number", "support", "ticket"),
            ("Exceptions", "report", "support", "case"),
            ("Webhook events", "webhook", "support", "webhookevent"),
            ("Tags", "sell", "support", "tag"),
            ("Triage rules", "rule", "support", "triagerule"),
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
        ],
    ),
    ("Billing", [("Invoices", "receipt_long", "billing", "invoice")]),
    (
        "Administration",
        [
            ("Users", "person", "auth", "user"),
            ("Groups", "group", "auth", "group"),
        ],
    ),
]


def environment_badge(request):
    """The badge in the header, so nobody mistakes a demo for production."""
    if settings.DEBUG:
        return ["Local demo", "warning"]
    return None


def navigation(request):
    """The sidebar: only what the signed-in person may open."""
    user = request.user
    groups = []
    for section, entries in SIDEBAR:
        items = [
            {
                "title": title,
                "icon": icon,
                "link": reverse(f"admin:{app_label}_{model_name}_changelist"),
            }
            for title, icon, app_label, model_name in entries
            if user.has_perm(f"{app_label}.view_{model_name}")
            or user.has_perm(f"{app_label}.change_{model_name}")
        ]
        if items:
            groups.append({"title": section, "separator": True, "items": items})
    return groups
