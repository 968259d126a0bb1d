"""The customer page in the admin: the customer's record with its overview, health
signals, billing tab, trace and onboarding below, the audit timeline and as-of actions,
and the audit log."""

import functools

from django.contrib import admin
from django.db.models import Exists, OuterRef
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from unfold.decorators import action, display

from customers.admin import CustomerAdmin
from customers.admin_trace import trace_page
from customers.models import Customer
from customers.trace import customer_trace
from onboarding.selectors import customer_checklists
from opsdesk.account_migration.admin import AccountMigrationMixin
from opsdesk.audit_log import views as audit_views
from opsdesk.customer_page.selectors import customer_billing, customer_overview
from opsdesk.health.filters import NeedsAttentionFilter, health_date
from opsdesk.health.flags import customer_health
from opsdesk.health.models import HealthSignal
from opsdesk.health.selectors import customer_signals


@admin.register(Customer)
class CustomerOverviewAdmin(AccountMigrationMixin, CustomerAdmin):
    """The customer page: the record, then everything support needs about it."""

    change_form_outer_after_template = "opsdesk/customer_overview.html"
    actions_detail = [*AccountMigrationMixin.actions_detail, "audit", "as_of"]
    # Last, so it sees the other filters' customers (the home page's link: a manager's own).
    list_filter = [*CustomerAdmin.list_filter, NeedsAttentionFilter]

    list_display = [*CustomerAdmin.list_display, "health"]

    def get_queryset(self, request):
        # Whether the customer has open signals, for the health column's link to them:
        # part of the list's own query, no query more.
        open_signals = HealthSignal.objects.filter(customer=OuterRef("pk")).exclude(
            state=HealthSignal.State.RESOLVED
        )
        return super().get_queryset(request).annotate(_open_signals=Exists(open_signals))

    def get_changelist_instance(self, request):
        """The list's page of customers, each with its live health (the digest's flags
        today, ``opsdesk.health.flags``): two queries for the page, whatever its size."""
        changelist = super().get_changelist_instance(request)
        customers = list(changelist.result_list)  # the page, evaluated once and kept
        health = {
            row.customer_id: row
            for row in customer_health(
                date=health_date(), customer_ids=[customer.pk for customer in customers]
            )
        }
        for customer in customers:
            customer.live_health = health.get(customer.pk)
        return changelist

    @display(description="Health today")
    def health(self, customer):
        row = getattr(customer, "live_health", None)
        if row is None:
            return "—"  # churned: the digest leaves it out
        if not row.flags:
            return mark_safe('<span class="od-pill od-active">healthy</span>')
        chips = format_html_join(
            " ",
            '<span class="od-pill od-open" title="{}">{}</span>',
            ((flag.reason, flag.label) for flag in row.flags),
        )
        if not getattr(customer, "_open_signals", False):
            return chips
        # The flags are today's, live; the signals on the customer page are what the
        # sweep keeps of them (who handles them, snoozes, history).
        url = reverse("admin:customers_customer_change", args=[customer.pk]) + "#signals"
        return format_html(
            '<a href="{}" class="od-health-link" title="Open signals on the customer page">{}</a>',
            url,
            chips,
        )

    @action(description="Audit timeline", url_path="audit", icon="history")
    def audit(self, request, object_id):
        return audit_views.customer_audit_view(request, object_id, model_admin=self)

    @action(description="As of a date…", url_path="as-of", icon="event")
    def as_of(self, request, object_id):
        return audit_views.customer_as_of_view(request, object_id, model_admin=self)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        if customer is not None:
            extra_context = {
                **(extra_context or {}),
                "overview": customer_overview(customer=customer),
                "signals": customer_signals(
                    customer=customer, user=request.user, today=health_date()
                ),
                "billing": customer_billing(customer=customer),
                "trace": customer_trace(customer, page=trace_page(request)),
                "onboarding": customer_checklists(customer=customer),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        def view(function, name, route):
            wrapped = self.admin_site.admin_view(functools.partial(function, model_admin=self))
            return path(route, wrapped, name=f"customers_customer_{name}")

        return [
            view(audit_views.audit_log_view, "audit_log", "audit-log/"),
            view(audit_views.audit_log_csv_view, "audit_log_csv", "audit-log/export.csv"),
            *super().get_urls(),
        ]
