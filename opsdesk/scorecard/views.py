"""The scorecard's pages (``/admin/scorecard/``, docs/product.md#scorecard): the figures
per week with a chart, and the rows behind each figure of a week.

Ops leads and superusers open it (``opsdesk.view_scorecard``, granted to Ops leads in
``kit.roles``); anyone else on the staff gets a 403. Parameters are read by forms: one
that is not understood is said in a message on a 400 page and no figure is shown (figures
for other parameters would pass for the ones asked), never a 500."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from kit.admin import WEEKS_DEFAULT, AsOfForm, form_errors
from kit.params import date_in_range
from opsdesk.scorecard import selectors
from support import reporting

PERMISSION = "opsdesk.view_scorecard"

_FIGURE_TITLES = {
    selectors.ONBOARDING: "Customers onboarded",
    selectors.BILLING: "Billing customer-months reconciled",
    selectors.CASES_OPENED: "Exceptions opened",
    selectors.CASES_RESOLVED: "Exceptions resolved",
    selectors.STAFF: "Staff active",
    selectors.ACTIONS: "Actions",
}


class ScorecardForm(AsOfForm):
    def report_filter(self) -> reporting.ReportFilter:
        data = self.cleaned_data
        return reporting.ReportFilter(
            moment=reporting.report_moment(data["as_of"]), weeks=data["weeks"] or WEEKS_DEFAULT
        )

    def carried(self) -> dict[str, str]:
        data = self.cleaned_data
        values = {
            "as_of": data["as_of"].isoformat() if data["as_of"] else "",
            "weeks": str(data["weeks"]) if data["weeks"] else "",
        }
        return {name: value for name, value in values.items() if value}


class RowsForm(ScorecardForm):
    """A drill-down: the scorecard's parameters, the figure, its week and (for actions)
    the role."""

    figure = forms.ChoiceField(choices=[(f, _FIGURE_TITLES[f]) for f in selectors.FIGURES])
    week = forms.DateField(validators=[date_in_range])
    role = forms.ChoiceField(required=False, choices=[("", "—"), *selectors.ROLE_LABELS.items()])

    def clean(self):
        data = super().clean()
        if data.get("figure") == selectors.ACTIONS and "role" in data and not data["role"]:
            self.add_error("role", "Give the role whose actions to list.")
        return data


def _check(request) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def _context(request, title: str, **extra) -> dict:
    request.current_app = admin.site.name
    return {**admin.site.each_context(request), "title": title, "is_fullwidth": "1", **extra}


def _refused(request, form, template: str, title: str) -> TemplateResponse:
    messages.error(request, "The scorecard's parameters were not understood: " + form_errors(form))
    return TemplateResponse(
        request, template, _context(request, title, form=form, card=None, lines=None), status=400
    )


def _query(params: dict[str, str]) -> str:
    return urlencode({name: value for name, value in params.items() if value})


def _rows_url(carried, week, figure, role="") -> str:
    return (
        reverse("scorecard:rows")
        + "?"
        + _query({**carried, "figure": figure, "week": week.monday.isoformat(), "role": role})
    )


def _support_url(carried, week) -> str:
    return (
        reverse("admin:support_ticket_report_tickets")
        + "?"
        + _query({**carried, "week": week.monday.isoformat(), "clock": "first_response"})
    )


def _table(card: selectors.Scorecard, carried: dict[str, str]) -> list[dict]:
    """The scorecard's lines: (section, label, cells); each cell its text and drill-down."""

    def cells(text_of, url_of, shown=lambda week: True):
        return [
            {"text": text_of(week), "url": url_of(week) if shown(week) else ""}
            for week in card.weeks
        ]

    def rows_of(figure, role=""):
        return lambda week: _rows_url(carried, week, figure, role)

    def support(week):
        return _support_url(carried, week)

    lines = [
        ("Onboarding", "Customers onboarded", cells(
            lambda w: w.onboarding.count, rows_of(selectors.ONBOARDING),
            lambda w: w.onboarding.count)),
        ("Onboarding", "Time to onboard, median", cells(
            lambda w: w.onboarding.median_text, rows_of(selectors.ONBOARDING),
            lambda w: w.onboarding.count)),
        ("Onboarding", "Time to onboard, p90", cells(
            lambda w: w.onboarding.p90_text, rows_of(selectors.ONBOARDING),
            lambda w: w.onboarding.count)),
        ("Support", "First response, median", cells(
            lambda w: w.support.median_text, support, lambda w: w.support.tickets)),
        ("Support", "First response, p90", cells(
            lambda w: w.support.p90_text, support, lambda w: w.support.tickets)),
        ("Support", "First response within target", cells(
            lambda w: w.support.within_text, support, lambda w: w.support.tickets)),
        ("Billing", "Customer-months reconciled", cells(
            lambda w: w.billing.count, rows_of(selectors.BILLING), lambda w: w.billing.count)),
        ("Billing", "Settled without a human touch", cells(
            lambda w: w.billing.text, rows_of(selectors.BILLING), lambda w: w.billing.count)),
        ("Exceptions", "Opened", cells(
            lambda w: w.cases_opened, rows_of(selectors.CASES_OPENED),
            lambda w: w.cases_opened)),
        ("Exceptions", "Resolved", cells(
            lambda w: w.cases_resolved.count, rows_of(selectors.CASES_RESOLVED),
            lambda w: w.cases_resolved.count)),
        ("Exceptions", "Time to resolve, median", cells(
            lambda w: w.cases_resolved.median_text, rows_of(selectors.CASES_RESOLVED),
            lambda w: w.cases_resolved.count)),
        ("Adoption", "Staff active", cells(
            lambda w: w.staff, rows_of(selectors.STAFF), lambda w: w.staff)),
    ]  # fmt: skip
    for role in (*selectors.ROLES, selectors.NO_ROLE):
        lines.append(
            (
                "Adoption",
                f"Actions: {selectors.ROLE_LABELS[role]}",
                cells(
                    lambda w, role=role: w.actions[role],
                    rows_of(selectors.ACTIONS, role),
                    lambda w, role=role: w.actions[role],
                ),
            )
        )
    return [{"section": s, "label": label, "cells": c} for s, label, c in lines]


def scorecard_view(request):
    """The scorecard: every figure per week, the chart, each figure linked to its rows."""
    _check(request)
    template, title = "opsdesk/scorecard/scorecard.html", "Operations scorecard"
    form = ScorecardForm(request.GET)
    if not form.is_valid():
        return _refused(request, form, template, title)
    carried = form.carried()
    card = selectors.scorecard(filters=form.report_filter())
    return TemplateResponse(
        request,
        template,
        _context(
            request,
            title,
            form=form,
            card=card,
            table=_table(card, carried),
            zone=timezone.get_current_timezone_name(),
        ),
    )


def scorecard_rows_view(request):
    """The rows behind one figure of one week, each linking to its record."""
    _check(request)
    template, title = "opsdesk/scorecard/rows.html", "Operations scorecard: rows"
    form = RowsForm(request.GET)
    if not form.is_valid():
        return _refused(request, form, template, title)
    data = form.cleaned_data
    filters = form.report_filter()
    monday = reporting.week_of(data["week"])
    lines = selectors.scorecard_rows(
        filters=filters, figure=data["figure"], week=monday, role=data["role"] or None
    )
    carried = form.carried()
    back = reverse("scorecard:page")
    heading = _FIGURE_TITLES[data["figure"]]
    if data["figure"] == selectors.ACTIONS:
        heading += f": {selectors.ROLE_LABELS[data['role']]}"
    return TemplateResponse(
        request,
        template,
        _context(
            request,
            title,
            form=form,
            lines=lines,
            heading=heading,
            figure=data["figure"],
            week_label=reporting.week_label(monday),
            moment=filters.moment,
            total=sum(line.weight for line in lines),
            back=f"{back}?{_query(carried)}" if carried else back,
        ),
    )


urlpatterns = [
    path("", admin.site.admin_view(scorecard_view), name="page"),
    path("rows/", admin.site.admin_view(scorecard_rows_view), name="rows"),
]
