"""The SLA policies' pages ("SLA policies" under Support): a policy with its business
hours, time zone, the plans it applies to, a target per priority and its holidays.

Service levels are data (docs/product.md#service-levels): ops leads change them here,
without a deploy; support and every role read them. A calendar, zone or plan that cannot
be used is refused with a message saying what is wrong (``SlaPolicy.clean``), and a
policy has a target for each priority, no more (``SlaTargetFormSet``). A change applies
to a ticket's clocks from its next event (support.ticket_sla)."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from unfold.admin import TabularInline
from unfold.decorators import display

from audit.admin import AuditedModelAdmin
from customers.models import Contract
from support import sla
from support.models import SlaHoliday, SlaPolicy, SlaTarget, Ticket


class SlaTargetFormSet(forms.BaseInlineFormSet):
    """Exactly one target per priority. A new policy's rows start as the default targets
    and are saved as shown: a row left as offered is a target, not an empty extra row."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if i >= self.initial_form_count() and self.initial_extra:
            form.empty_permitted = False
            form.has_changed = lambda: True
        return form

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        given = [
            form.cleaned_data.get("priority")
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        missing = [
            Ticket.Priority(priority).label for priority in sla.PRIORITIES if priority not in given
        ]
        if missing:
            raise ValidationError(
                f"Give a target for each priority; missing: {', '.join(missing)}."
            )


class SlaTargetInline(TabularInline):
    model = SlaTarget
    formset = SlaTargetFormSet
    fields = [
        "priority",
        "first_response_minutes",
        "next_response_minutes",
        "resolution_minutes",
        "business_hours",
    ]
    extra = 0
    max_num = len(sla.PRIORITIES)
    can_delete = False

    def get_extra(self, request, obj=None, **kwargs):
        # A new policy starts from the default targets, one row per priority.
        return len(sla.PRIORITIES) if obj is None else 0


def _default_target_rows() -> list[dict]:
    return [
        {
            "priority": priority,
            "first_response_minutes": int(target.first_response.total_seconds() // 60),
            "next_response_minutes": int(target.next_response.total_seconds() // 60),
            "resolution_minutes": int(target.resolution.total_seconds() // 60),
            "business_hours": target.business_hours,
        }
        for priority, target in sla.default_targets().items()
    ]


class SlaHolidayInline(TabularInline):
    model = SlaHoliday
    fields = ["date", "name"]
    extra = 0
    ordering = ["date"]


class SlaPolicyForm(forms.ModelForm):
    plans = forms.MultipleChoiceField(
        choices=Contract.Plan.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The contract plans it applies to (a plan belongs to one policy).",
    )
    business_hours = forms.JSONField(
        initial=sla.DEFAULT_HOURS,
        widget=forms.Textarea(attrs={"rows": 8, "class": "od-mono"}),
        help_text=SlaPolicy._meta.get_field("business_hours").help_text,
        error_messages={"invalid": "Write the business hours as JSON: %(value)s is not."},
    )

    class Meta:
        model = SlaPolicy
        fields = ["name", "plans", "is_default", "time_zone", "business_hours"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(AuditedModelAdmin):
    form = SlaPolicyForm
    list_display = ["name", "plans_shown", "is_default", "time_zone", "hours_shown", "days_off"]
    search_fields = ["name"]
    inlines = [SlaTargetInline, SlaHolidayInline]
    fields = ["name", "plans", "is_default", "time_zone", "business_hours"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_holidays=Count("holidays"))

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, SlaTargetInline) and obj.pk is None:
            kwargs["initial"] = _default_target_rows()
        return kwargs

    @display(description="Plans")
    def plans_shown(self, obj):
        names = [Contract.Plan(p).label for p in obj.plans if p in Contract.Plan.values]
        return ", ".join(names) or ("everyone else" if obj.is_default else "—")

    @display(description="Business hours")
    def hours_shown(self, obj):
        try:
            week = sla.week_parse(obj.business_hours)
        except sla.CalendarError:
            return json.dumps(obj.business_hours)[:80]
        return week_summary(week)

    @display(description="Holidays", ordering="_holidays")
    def days_off(self, obj):
        return obj._holidays


def week_summary(week: sla.Week) -> str:
    """ "Mon-Fri 09:00-17:00", days with the same hours run together."""
    parts = []
    day = 0
    while day < 7:
        hours = week[day]
        last = day
        while last + 1 < 7 and week[last + 1] == hours:
            last += 1
        if hours:
            days = sla.WEEKDAYS[day].capitalize()
            if last > day:
                days += "-" + sla.WEEKDAYS[last].capitalize()
            shown = ", ".join(f"{sla.hhmm(a)}-{sla.hhmm(b)}" for a, b in hours)
            parts.append(f"{days} {shown}")
        day = last + 1
    return "; ".join(parts)
