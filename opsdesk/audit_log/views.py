"""Audit pages in the admin (opsdesk.audit_log.selectors): a customer's audit timeline, the
customer as of a date, the global audit log and its CSV export.

Who sees what: a customer's timeline and as-of view, whoever may view the customer (all
three roles: support reads everything customer-related). The global log lists the
history of the record types the person may view, so support and account managers see
customer records' history, ops leads also reconciliation and onboarding, superusers
everything; someone who may view none of them gets a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from kit.admin import form_errors, report_refused_filters
from kit.params import DATE_MAX, DATE_MIN, ParamError, date_param, object_or_404, page_param
from opsdesk.audit_log.selectors import (
    AuditLogFilter,
    audit_log,
    csv_lines,
    customer_as_of,
    customer_audit,
)


def _context(model_admin, request, title: str, **extra) -> dict:
    request.current_app = model_admin.admin_site.name
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "is_fullwidth": "1",
        **extra,
    }


def _customer(model_admin, request, object_id):
    customer = object_or_404(model_admin.model, object_id, model_admin.get_queryset(request))
    if not model_admin.has_view_or_change_permission(request, customer):
        raise PermissionDenied
    return customer


def customer_audit_view(request, object_id, *, model_admin):
    """Everything that happened to the customer and what belongs to it, newest first."""
    customer = _customer(model_admin, request, object_id)
    page = customer_audit(customer, page=page_param(request, "trace_page"))
    return TemplateResponse(
        request,
        "opsdesk/audit/customer_timeline.html",
        _context(
            model_admin,
            request,
            f"Audit timeline: {customer.name}",
            customer=customer,
            trace=page,
        ),
    )


def customer_as_of_view(request, object_id, *, model_admin):
    """The customer's contracts and entitlements as they were at the end of a date."""
    customer = _customer(model_admin, request, object_id)
    today = timezone.localdate()
    try:
        date = date_param(request, "date", today)
    except ParamError:
        raw = request.GET.get("date", "")[:40]
        messages.error(
            request,
            f"“{raw}” is not a date from {DATE_MIN:%Y-%m-%d} to {DATE_MAX:%Y-%m-%d} "
            "(YYYY-MM-DD); showing today.",
        )
        date = today
    return TemplateResponse(
        request,
        "opsdesk/audit/customer_as_of.html",
        _context(
            model_admin,
            request,
            f"{customer.name} as of {date:%-d %b %Y}",
            customer=customer,
            as_of=customer_as_of(customer, date),
            today=today,
        ),
    )


def _log_filters(request) -> AuditLogFilter:
    filterset = AuditLogFilter(request.GET, user=request.user)
    if not filterset.models:
        raise PermissionDenied
    return filterset


def audit_log_view(request, *, model_admin):
    """Every change to every record type the person may view, newest first."""
    filterset = _log_filters(request)
    page = None
    if filterset.is_valid():
        page = audit_log(filterset, page=page_param(request, "trace_page"))
    else:
        report_refused_filters(request, filterset.form)
    query = request.GET.copy()
    query.pop("trace_page", None)
    return TemplateResponse(
        request,
        "opsdesk/audit/log.html",
        _context(
            model_admin,
            request,
            "Audit log",
            filterset=filterset,
            trace=page,
            query=query.urlencode(),
        ),
    )


def audit_log_csv_view(request, *, model_admin):
    """The filtered log as CSV, streamed row by row (constant memory, any size)."""
    filterset = _log_filters(request)
    if not filterset.is_valid():
        return HttpResponseBadRequest(
            "The export's filters were not understood: " + form_errors(filterset.form),
            content_type="text/plain",
        )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(csv_lines(filterset.sources()), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response
