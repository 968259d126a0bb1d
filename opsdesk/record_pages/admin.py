"""The entitlement and order pages: the record with, at its top, the answer a person
opens it for (customers.answers: does the person have access and why not; what happened
to the order) and the open cases about it, linked (docs/product.md#finding-answers)."""

from __future__ import annotations

from django.contrib import admin

from customers.admin import EntitlementAdmin, OrderAdmin
from customers.answers import entitlement_access, order_outcome
from customers.models import Entitlement, Order
from opsdesk.record_pages.selectors import cases_open_about


class AnswerAtTopMixin:
    """Puts ``answer(obj)`` and the open cases about ``obj`` above its change form."""

    def answer(self, obj):
        raise NotImplementedError

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None:
            context["answer"] = self.answer(obj)
            context["open_cases"] = cases_open_about(subject=obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(Entitlement)
class EntitlementPageAdmin(AnswerAtTopMixin, EntitlementAdmin):
    change_form_before_template = "opsdesk/entitlement_answer.html"

    def answer(self, obj):
        return entitlement_access(entitlement=obj)


@admin.register(Order)
class OrderPageAdmin(AnswerAtTopMixin, OrderAdmin):
    change_form_before_template = "opsdesk/order_answer.html"

    def answer(self, obj):
        return order_outcome(order=obj)
