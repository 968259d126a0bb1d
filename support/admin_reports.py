"""The support report's pages ("Support report" under Support): the figures of
``support.reporting`` with a chart, the tickets behind each figure, and the table as CSV.

Whoever reads tickets (``support.view_ticket``: every staff role) reads the report. Its
parameters (``as_of``, ``weeks``, ``plan``, ``priority``; a drill-down's ``clock``,
``week``, ``person``) are read by ``ReportForm``: one that is not understood is said in a
message and nothing is shown (figures for other parameters would pass for the ones
asked), never a 500; the CSV export answers 400 with the same words."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from customers.models import Contract
from kit.admin import AsOfForm, form_errors, report_refused_filters
from kit.csv_export import export_lines
from kit.params import date_in_range, page_param
from support import reporting
from support.models import Ticket

PERMISSION = "support.view_ticket"
_PERSON_MAX = 2**63 - 1


class ReportForm(AsOfForm):
    """The report's parameters; every one optional (the defaults: now, the last
    ``WEEKS_DEFAULT`` weeks, every plan and priority)."""

    plan = forms.ChoiceField(
        label="Plan",
        required=False,
        choices=[("", "Any plan"), *Contract.Plan.choices, (reporting.NONE, "No plan")],
    )
    priority = forms.ChoiceField(
        label="Priority",
        required=False,
        choices=[
            ("", "Any priority"),
            *((p, Ticket.Priority(p).label) for p in reporting.PRIORITY_ORDER),
        ],
    )

    # The parameters a link to another page of the report carries over.
    CARRIED = ("as_of", "weeks", "plan", "priority")

    def report_filter(self, **extra) -> reporting.ReportFilter:
        data = self.cleaned_data
        return reporting.ReportFilter(
            moment=reporting.report_moment(data["as_of"]),
            weeks=data["weeks"] or reporting.WEEKS_DEFAULT,
            plan=data["plan"] or None,
            priority=data["priority"] or None,
            **extra,
        )

    def carried(self) -> dict[str, str]:
        """The given parameters, as a link to another page of the report passes them."""
        data = self.cleaned_data
        values = {
            "as_of": data["as_of"].isoformat() if data["as_of"] else "",
            "weeks": str(data["weeks"]) if data["weeks"] else "",
            "plan": data["plan"],
            "priority": data["priority"],
        }
        return {name: value for name, value in values.items() if value}


class DrillForm(ReportForm):
    """A drill-down's parameters: the report's, the clock, and the group of the figure
    (a week, a person; a plan or priority is the report's own parameter)."""

    clock = forms.ChoiceField(
        label="Clock", choices=[(c, reporting.CLOCK_LABELS[c]) for c in reporting.CLOCKS]
    )
    week = forms.DateField(label="Week of", required=False, validators=[date_in_range])
    person = forms.CharField(label="Person", required=False, max_length=25)

    def clean_person(self):
        value = self.cleaned_data["person"].strip()
        if value in ("", reporting.NONE):
            return value or None
        if not value.isascii() or not value.isdigit() or not 0 < int(value) <= _PERSON_MAX:
            raise forms.ValidationError("Give a staff member's id, or “none” for unassigned.")
        return int(value)

    def drill_filter(self) -> reporting.ReportFilter:
        data = self.cleaned_data
        return self.report_filter(clock=data["clock"], week=data["week"], person=data["person"])


def _check(request) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def _context(model_admin, request, title: str, **extra) -> dict:
    request.current_app = model_admin.admin_site.name
    return {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "opts": model_admin.model._meta,
        "is_fullwidth": "1",
        **extra,
    }


def _query(params: dict[str, str]) -> str:
    return urlencode({name: value for name, value in params.items() if value})


def _drill_url(carried: dict[str, str], row: reporting.Row, clock: str) -> str:
    return (
        reverse("admin:support_ticket_report_tickets")
        + "?"
        + _query({**carried, **row.params, "clock": clock})
    )


def _shown_rows(rows: list[reporting.Row], carried: dict[str, str]) -> list[dict]:
    return [
        {
            "row": row,
            "clocks": [
                {
                    "clock": clock,
                    "label": reporting.CLOCK_LABELS[clock],
                    "figures": row.figures(clock),
                    "url": _drill_url(carried, row, clock),
                }
                for clock in reporting.CLOCKS
            ],
        }
        for row in rows
    ]


def report_view(request, *, model_admin):
    """The report: the figures per week, plan, priority and person, and the chart."""
    _check(request)
    form = ReportForm(request.GET)
    report = sections = total = None
    carried: dict[str, str] = {}
    if form.is_valid():
        report = reporting.support_report(filters=form.report_filter())
        carried = form.carried()
        sections = [
            (dimension, heading, _shown_rows(rows, carried))
            for dimension, heading, rows in report.sections
        ]
        total = _shown_rows([report.total], carried)[0]
    else:
        report_refused_filters(request, form)
    return TemplateResponse(
        request,
        "support/report.html",
        _context(
            model_admin,
            request,
            "Support report",
            form=form,
            report=report,
            sections=sections,
            total=total,
            clock_labels=reporting.CLOCK_LABELS,
            csv_query=_query(carried),
            zone=timezone.get_current_timezone_name(),
            today=timezone.localdate(),
        ),
    )


def _group_words(form: DrillForm) -> list[str]:
    """What the drill-down lists, in words: "week of 5 Jan 2026", "Growth", ..."""
    data = form.cleaned_data
    words = []
    if data["week"]:
        monday = reporting.week_of(data["week"])
        words.append(f"in the week of {reporting.week_label(monday)}")
    if data["plan"]:
        words.append(dict(form.fields["plan"].choices)[data["plan"]])
    if data["priority"]:
        words.append(f"{Ticket.Priority(data['priority']).label} priority")
    if data["person"] == reporting.NONE:
        words.append("unassigned")
    elif data["person"] is not None:
        words.append(f"person #{data['person']}")
    return words


def report_tickets_view(request, *, model_admin):
    """The tickets behind one figure, with the times and outcomes that make it."""
    _check(request)
    form = DrillForm(request.GET)
    tickets = None
    context: dict = {"tickets": None}
    if form.is_valid():
        tickets = reporting.report_tickets(filters=form.drill_filter(), page=page_param(request))
        carried = form.carried()
        query = request.GET.copy()
        query.pop("page", None)
        ids = ",".join(str(line.id) for line in tickets.lines if line.present)
        back = reverse("admin:support_ticket_report")
        context = {
            "tickets": tickets,
            "clock_label": reporting.CLOCK_LABELS[form.cleaned_data["clock"]],
            "group_words": _group_words(form),
            "back": f"{back}?{_query(carried)}" if carried else back,
            "query": query.urlencode(),
            # The page's tickets in the ticket list, to act on them there.
            "changelist": (
                f"{reverse('admin:support_ticket_changelist')}?id__in={ids}" if ids else ""
            ),
            "weeks_shown": tickets.filters.week_starts,
        }
    else:
        report_refused_filters(request, form)
    return TemplateResponse(
        request,
        "support/report_tickets.html",
        _context(model_admin, request, "Support report: tickets", form=form, **context),
    )


def report_csv_view(request, *, model_admin):
    """The report's table as CSV (``kit.csv_export``: every cell quoted, formulas
    neutralised)."""
    _check(request)
    form = ReportForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(
            "The export's parameters were not understood: " + form_errors(form),
            content_type="text/plain",
        )
    filters = form.report_filter()
    report = reporting.support_report(filters=filters)
    lines = export_lines(reporting.Report.CSV_HEADER, report.csv_rows())
    stamp = timezone.localtime(filters.moment).strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="support-report-{stamp}.csv"'
    return response


def report_urls(model_admin) -> list:
    """The report's routes under the ticket admin (``/admin/support/ticket/report/``)."""

    def view(function, route, name):
        def page(request):
            return function(request, model_admin=model_admin)

        return path(route, model_admin.admin_site.admin_view(page), name=name)

    return [
        view(report_view, "report/", "support_ticket_report"),
        view(report_tickets_view, "report/tickets/", "support_ticket_report_tickets"),
        view(report_csv_view, "report/export.csv", "support_ticket_report_csv"),
    ]
