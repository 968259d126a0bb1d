"""The trace on the admin's order and entitlement pages (customers.trace), as mixins
for their ``ModelAdmin``s; the customer page shows its own in the overview."""

from __future__ import annotations

from customers.trace import entitlement_trace, order_trace
from kit.params import page_param

TRACE_PAGE = "trace_page"


def trace_page(request) -> int:
    """The trace's page number from ``?trace_page=`` (kit.params.page_param)."""
    return page_param(request, TRACE_PAGE)


class TraceAdminMixin:
    """Shows ``trace(obj, page=...)`` under the change form of an existing record."""

    change_form_after_template = "audit/timeline.html"
    trace = None

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None and self.trace is not None:
            context["trace"] = self.trace(obj, page=trace_page(request))
        return super().render_change_form(request, context, add, change, form_url, obj)


class OrderTraceMixin(TraceAdminMixin):
    trace = staticmethod(order_trace)


class EntitlementTraceMixin(TraceAdminMixin):
    trace = staticmethod(entitlement_trace)
