"""Health signals in the admin (docs/product.md#health-signals): the list, each signal's
record with its history, the confirmation pages the digest's links open (acknowledge,
snooze: a GET shows the page, only its POST changes anything), the reasons given per
kind, and the sweeps' log."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from audit.admin import (
    AuditedModelAdmin,
    RecordPageMixin,
    SystemMadeMixin,
    choice_badge,
    short_text,
)
from kit.admin import back_url, report_refusal
from kit.dates import DateInput
from kit.params import object_or_404
from kit.people import person_name
from kit.text import count_of
from opsdesk.health.models import HealthSignal, HealthSweep
from opsdesk.health.signals import (
    REASON_MAX_LENGTH,
    SNOOZE_MAX_DAYS,
    SignalError,
    may_handle,
    signal_acknowledge,
    signal_snooze,
)


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=REASON_MAX_LENGTH,
        help_text="What you are doing about it; kept in the signal's history.",
    )


class SnoozeForm(forms.Form):
    until = forms.DateField(
        label="Hide from the digest until",
        widget=DateInput(),
        help_text=f"That day's digest shows it again; at most {SNOOZE_MAX_DAYS} days ahead.",
    )
    reason = forms.CharField(
        label="Why",
        max_length=REASON_MAX_LENGTH,
        help_text="For example: the customer is on holiday. The reasons are read per kind "
        "to tune the rules.",
    )


class ManagedByFilter(admin.SimpleListFilter):
    title = "account manager"
    parameter_name = "manager"

    def lookups(self, request, model_admin):
        return [("me", "My customers"), ("none", "Unassigned")]

    def queryset(self, request, queryset):
        if self.value() == "me":
            return queryset.filter(customer__account_manager=request.user)
        if self.value() == "none":
            return queryset.filter(customer__account_manager__isnull=True)
        return queryset


class OpenFilter(admin.SimpleListFilter):
    title = "open or resolved"
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", "Open (any state but resolved)"), ("no", "Resolved")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(state=HealthSignal.State.RESOLVED)
        if self.value() == "no":
            return queryset.filter(state=HealthSignal.State.RESOLVED)
        return queryset


@admin.register(HealthSignal)
class HealthSignalAdmin(SystemMadeMixin, RecordPageMixin, AuditedModelAdmin):
    """Signals are made and resolved by the daily sweep; people acknowledge and snooze
    them on the confirmation pages, through ``opsdesk.health.signals``."""

    list_display = [
        "label",
        "customer",
        "state_badge",
        "opened_on",
        "short_reason",
        "handled_by",
        "snoozed_until",
        "resolved_on",
    ]
    list_filter = [OpenFilter, "state", "kind", ManagedByFilter, "opened_on"]
    list_select_related = ["customer", "acknowledged_by"]
    search_fields = ["customer__name", "customer__external_id"]
    readonly_fields = [
        f.name for f in HealthSignal._meta.get_fields() if f.concrete and f.name != "id"
    ]
    change_form_template = "opsdesk/signal_change_form.html"

    state_badge = choice_badge(
        "state",
        {
            HealthSignal.State.OPEN: "danger",
            HealthSignal.State.ACKNOWLEDGED: "warning",
            HealthSignal.State.SNOOZED: "info",
            HealthSignal.State.RESOLVED: "success",
        },
    )
    short_reason = short_text("reason")

    @admin.display(description="being handled by")
    def handled_by(self, signal: HealthSignal) -> str:
        return person_name(signal.acknowledged_by) or "—"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        signal = HealthSignal.objects.filter(pk__in=[object_id] if object_id.isdigit() else [])
        signal = signal.select_related("customer").first()
        extra = {"may_handle": signal is not None and may_handle(request.user, signal)}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/acknowledge/",
                view(self.acknowledge_view),
                name="opsdesk_healthsignal_acknowledge",
            ),
            path(
                "<path:object_id>/snooze/",
                view(self.snooze_view),
                name="opsdesk_healthsignal_snooze",
            ),
            path("reasons/", view(self.reasons_view), name="opsdesk_healthsignal_reasons"),
            *super().get_urls(),
        ]

    # --- The confirmation pages ----------------------------------------------------------

    def _signal(self, request, object_id: str) -> HealthSignal:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return object_or_404(
            HealthSignal,
            object_id,
            HealthSignal.objects.select_related("customer", "acknowledged_by", "snoozed_by"),
        )

    def _back(self, request, signal) -> tuple[str, str]:
        """Where the person goes after the action, and the ``next`` the form carries: the
        page the link came from (its ``next``, this site's pages only; the form posts it
        back), else the customer's signals on its page (a digest's link carries none)."""
        fallback = reverse("admin:customers_customer_change", args=[signal.customer_id])
        fallback += "#signals"
        given = request.POST.get("next") if request.method == "POST" else request.GET.get("next")
        back = back_url(request, given, fallback)
        return back, ("" if back == fallback else back)

    def _page(self, request, signal, *, action, form, help_text, button):
        back, carried = self._back(request, signal)
        refusal = ""
        if not signal.is_open:
            refusal = f"It was resolved on {signal.resolved_on:%-d %b %Y}: nothing to do."
        elif not may_handle(request.user, signal):
            manager = person_name(signal.customer.account_manager) or "nobody yet"
            refusal = (
                "Only the customer's account manager (" + manager + ") or an ops lead "
                "acknowledges and snoozes its signals."
            )
        return TemplateResponse(
            request,
            "opsdesk/signal_confirm.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{action}: {signal.label}, {signal.customer.name}",
                "action": action,
                "signal": signal,
                "form": form,
                "help": help_text,
                "button": button,
                "refusal": refusal,
                "back": back,
                "next": carried,
                "age": count_of((timezone.localdate() - signal.opened_on).days, "day"),
                "opts": HealthSignal._meta,
            },
        )

    def _done(self, request, signal, text) -> HttpResponseRedirect:
        messages.success(request, text)
        return HttpResponseRedirect(self._back(request, signal)[0])

    def acknowledge_view(self, request, object_id: str):
        signal = self._signal(request, object_id)
        form = AcknowledgeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                signal_acknowledge(signal=signal, by=request.user, note=form.cleaned_data["note"])
            except SignalError as error:
                report_refusal(request, error)
            else:
                return self._done(
                    request, signal, f"{signal.label} of {signal.customer.name}: being handled."
                )
        return self._page(
            request,
            signal,
            action="Acknowledge",
            form=form,
            help_text="It stays in the digest, marked as being handled by you.",
            button="Acknowledge",
        )

    def snooze_view(self, request, object_id: str):
        signal = self._signal(request, object_id)
        today = timezone.localdate()
        initial = {"until": today + dt.timedelta(days=7)}
        form = SnoozeForm(request.POST or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            try:
                signal_snooze(
                    signal=signal,
                    by=request.user,
                    until=form.cleaned_data["until"],
                    reason=form.cleaned_data["reason"],
                    today=today,
                )
            except SignalError as error:
                report_refusal(request, error)
            else:
                until = form.cleaned_data["until"]
                return self._done(
                    request,
                    signal,
                    f"{signal.label} of {signal.customer.name}: snoozed until "
                    f"{until.day} {until:%b %Y}.",
                )
        return self._page(
            request,
            signal,
            action="Snooze",
            form=form,
            help_text="Hidden from your digest until that day, or until it gets materially "
            "worse (each kind's rule is in the docs).",
            button="Snooze",
        )

    # --- The reasons per kind ------------------------------------------------------------

    def reasons_view(self, request):
        """Every acknowledgement note and snooze reason ever given, per kind, from the
        signals' history (a reason replaced later is still listed)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        given = (
            HealthSignal.history.filter(~Q(snooze_reason="") | ~Q(acknowledge_note=""))
            .values_list("id", "kind", "label", "snooze_reason", "acknowledge_note")
            .distinct()
            .order_by()
        )
        kinds: dict[str, dict] = {}
        seen: set[tuple] = set()
        for pk, code, label, snoozed, noted in given:
            for what, text in (("snoozed", snoozed), ("acknowledged", noted)):
                if not text or (pk, what, text) in seen:
                    continue
                seen.add((pk, what, text))
                kind = kinds.setdefault(code, {"label": label, "reasons": {}})
                kind["reasons"][(what, text)] = kind["reasons"].get((what, text), 0) + 1
        totals = {
            row["kind"]: row
            for row in HealthSignal.objects.values("kind").annotate(
                n=Count("pk"),
                snoozed=Count("pk", filter=~Q(snooze_reason="")),
                handled=Count("pk", filter=Q(acknowledged_at__isnull=False)),
            )
        }
        table = [
            {
                "kind": code,
                "label": kind["label"],
                "total": totals.get(code),
                "reasons": sorted(
                    ((what, text, n) for (what, text), n in kind["reasons"].items()),
                    key=lambda r: (-r[2], r[0], r[1].lower()),
                ),
            }
            for code, kind in sorted(kinds.items(), key=lambda item: item[1]["label"])
        ]
        return TemplateResponse(
            request,
            "opsdesk/signal_reasons.html",
            {
                **self.admin_site.each_context(request),
                "title": "Why signals were snoozed or acknowledged",
                "table": table,
                "opts": HealthSignal._meta,
            },
        )


@admin.register(HealthSweep)
class HealthSweepAdmin(SystemMadeMixin, RecordPageMixin, AuditedModelAdmin):
    """The log of the daily sweeps: when each date's ran and what it changed."""

    list_display = [
        "date",
        "status",
        "customers",
        "opened",
        "updated",
        "woke",
        "resolved",
        "finished_at",
        "short_error",
    ]
    list_filter = ["status"]
    readonly_fields = [
        f.name for f in HealthSweep._meta.get_fields() if f.concrete and f.name != "id"
    ]
    short_error = short_text("error")
