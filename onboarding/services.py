"""Onboarding's state changes: generating a contract's checklist, following its scope,
and working its tasks. Each runs in one transaction and leaves history."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone

from audit.context import require_permission
from customers.models import Contact, Contract
from kit import roles
from kit.dates import moment_text
from kit.people import person_name
from onboarding.access import user_may_work_onboarding_task
from onboarding.models import Checklist, ChecklistTask, Role, TemplateItem

NO_VALUE = {
    "crm_id": "(no CRM id)",
    "primary_contact": "(no primary contact)",
    "technical_contact": "(no technical contact)",
    "account_manager": "(no account manager)",
    "integrations": "none",
}


class OnboardingError(Exception):
    """An onboarding action that cannot be done; the message says why."""


class OnboardingPermissionError(PermissionDenied):
    """The person may not work onboarding tasks; nothing was changed (a 403 in a view)."""


CHANGE_TASK = "onboarding.change_checklisttask"


def _may_work_tasks(by, task: ChecklistTask | None = None) -> None:
    """``by`` is the person asking; None is the system (the demo, a command), refused
    while a person's request is served so a view cannot skip the check by naming nobody.
    An account manager works only the tasks of the customers they manage (and tasks
    given to them): ``onboarding.access.user_may_work_onboarding_task``."""
    require_permission(by, CHANGE_TASK, OnboardingPermissionError)
    if by is not None and task is not None and not user_may_work_onboarding_task(by, task):
        raise OnboardingPermissionError(
            "You may not do this: an account manager works the onboarding tasks of the "
            "customers they manage."
        )


def placeholder_values(contract: Contract) -> dict[str, str]:
    """The customer's data as template items' placeholders read it (one query: contacts).

    ``contract.customer`` and its account manager should be loaded with the contract.
    """
    customer = contract.customer
    contacts = list(Contact.objects.filter(customer=customer).order_by("-is_primary", "name"))
    primary = next((c for c in contacts if c.is_primary), None)
    technical = next((c for c in contacts if c.role == Contact.Role.TECHNICAL), None)
    labels = dict(Contract.Integration.choices)
    manager = customer.account_manager
    values = {
        "customer": customer.name,
        "tenant_id": customer.external_id,
        "crm_id": customer.crm_id,
        "plan": contract.get_plan_display(),
        "seats": str(contract.seats),
        "integrations": ", ".join(labels.get(i, i) for i in contract.integrations or []),
        "start_date": f"{contract.start_date.day} {contract.start_date:%b %Y}",
        "primary_contact": f"{primary.name} <{primary.email}>" if primary else "",
        "technical_contact": f"{technical.name} <{technical.email}>" if technical else "",
        "account_manager": (manager.get_full_name() or manager.get_username()) if manager else "",
    }
    return {name: value or NO_VALUE.get(name, "") for name, value in values.items()}


def _least_busy(group: str):
    """The active member of ``group`` with the fewest open onboarding tasks (then by
    username): work spreads over the team instead of piling on one person."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=group)
        .annotate(
            open_tasks=Count(
                "onboarding_tasks", filter=Q(onboarding_tasks__state=ChecklistTask.State.OPEN)
            )
        )
        .order_by("open_tasks", "username")
        .first()
    )


class _Owners:
    """Resolves each role to a person once per generation (lazily: two queries at most)."""

    def __init__(self, customer):
        self.customer = customer
        self._resolved: dict[str, object] = {}

    def __getitem__(self, role: str):
        if role not in self._resolved:
            if role == Role.ACCOUNT_MANAGER:
                manager = self.customer.account_manager
                self._resolved[role] = manager if manager and manager.is_active else None
            else:
                group = roles.SUPPORT if role == Role.SUPPORT else roles.OPS_LEADS
                self._resolved[role] = _least_busy(group)
        return self._resolved[role]


def _items() -> list[TemplateItem]:
    return list(
        TemplateItem.objects.select_related("template").order_by("template__name", "position", "pk")
    )


def _new_task(*, checklist, item, contract, values, owners, position) -> ChecklistTask:
    return ChecklistTask.objects.create(
        checklist=checklist,
        template_item=item,
        position=position,
        title=item.title.format_map(values),
        text=item.text.format_map(values),
        role=item.role,
        owner=owners[item.role],
        due_date=contract.start_date + dt.timedelta(days=item.due_offset_days),
    )


def _locked_contract(contract: Contract) -> Contract:
    # The contract's row lock serialises generation and sync of one contract.
    return (
        Contract.objects.select_for_update(of=("self",))
        .select_related("customer__account_manager")
        .get(pk=contract.pk)
    )


def _activation_time(contract: Contract) -> dt.datetime:
    """When the contract last became active, from its history (now if it has none)."""
    rows = contract.history.order_by("-history_date", "-history_id").values_list(
        "status", "history_date"
    )
    became = None
    for status, at in rows:
        if status != Contract.Status.ACTIVE:
            break
        became = at
    return became or timezone.now()


def _settle(checklist: Checklist) -> None:
    """Completed when no task is open: at the last task done (activation if none was)."""
    tasks = checklist.tasks.aggregate(
        open=Count("pk", filter=Q(state=ChecklistTask.State.OPEN)), last_done=Max("done_at")
    )
    completed_at = None if tasks["open"] else (tasks["last_done"] or checklist.activated_at)
    if completed_at and completed_at < checklist.activated_at:
        completed_at = checklist.activated_at
    if checklist.completed_at != completed_at:
        checklist.completed_at = completed_at
        checklist.save(update_fields=["completed_at"])


def _generate(contract: Contract, activated_at=None) -> tuple[Checklist, bool]:
    checklist, created = Checklist.objects.get_or_create(
        contract=contract,
        defaults={
            "customer_id": contract.customer_id,
            "activated_at": activated_at or _activation_time(contract),
        },
    )
    if not created:
        return checklist, False
    values = placeholder_values(contract)
    owners = _Owners(contract.customer)
    applicable = [i for i in _items() if i.template.active and i.applies_to(contract)]
    for position, item in enumerate(applicable):
        _new_task(
            checklist=checklist,
            item=item,
            contract=contract,
            values=values,
            owners=owners,
            position=position,
        )
    _settle(checklist)
    return checklist, True


def checklist_generate(
    *, contract: Contract, activated_at: dt.datetime | None = None
) -> Checklist | None:
    """The onboarding checklist of an active contract: one task per item of the active
    templates whose conditions hold for the contract's scope, its text filled with the
    customer's data, its owner a person and its due date the start plus the offset.

    Idempotent: a contract has one checklist (unique constraint); a second call returns
    it and changes nothing. A contract that is not active gets none (None).
    ``activated_at`` (default: when its history shows it became active) is for the demo.
    """
    with transaction.atomic():
        contract = _locked_contract(contract)
        if contract.status != Contract.Status.ACTIVE:
            return None
        checklist, _ = _generate(contract, activated_at)
        return checklist


def checklist_sync(*, contract: Contract) -> Checklist | None:
    """Follow a change of an active contract's scope (plan, integrations, seats):

    - items that now apply and have no task get one (active templates only);
    - open tasks whose item no longer applies become not applicable (kept);
    - a not-applicable task whose item applies again is reopened;
    - done tasks are never touched.

    Idempotent: a second call changes nothing. A contract without a checklist gets it
    generated; one that is no longer active is left as it is.
    """
    with transaction.atomic():
        contract = _locked_contract(contract)
        if contract.status != Contract.Status.ACTIVE:
            return Checklist.objects.filter(contract=contract).first()
        checklist, created = _generate(contract)
        if created:
            return checklist
        tasks = {t.template_item_id: t for t in checklist.tasks.select_for_update()}
        values = owners = None
        position = max((t.position for t in tasks.values()), default=-1) + 1
        for item in _items():
            applies = item.applies_to(contract)
            task = tasks.get(item.pk)
            if task is None:
                if applies and item.template.active:
                    if values is None:
                        values, owners = placeholder_values(contract), _Owners(contract.customer)
                    _new_task(
                        checklist=checklist,
                        item=item,
                        contract=contract,
                        values=values,
                        owners=owners,
                        position=position,
                    )
                    position += 1
            elif applies and task.state == ChecklistTask.State.NOT_APPLICABLE:
                task.state = ChecklistTask.State.OPEN
                task._change_reason = "applies again after a change of the contract's scope"
                task.save()
            elif not applies and task.state == ChecklistTask.State.OPEN:
                task.state = ChecklistTask.State.NOT_APPLICABLE
                task._change_reason = "no longer applies after a change of the contract's scope"
                task.save()
        _settle(checklist)
        return checklist


def checklist_task_done(*, task: ChecklistTask, user, at: dt.datetime | None = None) -> str:
    """Mark an open task done by ``user``, who must be allowed to work onboarding tasks
    (``OnboardingPermissionError`` otherwise). A task that is done or not applicable is
    refused with the reason and left unchanged. ``at`` (default now) is for the demo."""
    _may_work_tasks(user, task)
    with transaction.atomic():
        task = (
            ChecklistTask.objects.select_for_update(of=("self",))
            .select_related("done_by")
            .get(pk=task.pk)
        )
        if task.state == ChecklistTask.State.DONE:
            who = person_name(task.done_by) if task.done_by else "someone"
            raise OnboardingError(
                f"“{task.title}” was already done by {who} on {moment_text(task.done_at)}."
            )
        if task.state != ChecklistTask.State.OPEN:
            raise OnboardingError(f"“{task.title}” is not applicable to this contract any more.")
        task.state = ChecklistTask.State.DONE
        task.done_by = user
        task.done_at = at or timezone.now()
        task.save()
        checklist = Checklist.objects.select_for_update().get(pk=task.checklist_id)
        _settle(checklist)
    return f"Done: “{task.title}”."


def checklist_task_reopen(*, task: ChecklistTask, by) -> str:
    """Undo a done mark made by mistake: the task is open again, the checklist too.
    ``by`` must be allowed to work onboarding tasks (None: the system)."""
    _may_work_tasks(by, task)
    with transaction.atomic():
        task = ChecklistTask.objects.select_for_update().get(pk=task.pk)
        if task.state != ChecklistTask.State.DONE:
            raise OnboardingError(f"“{task.title}” is not done, so there is nothing to reopen.")
        task.state = ChecklistTask.State.OPEN
        task.done_by = None
        task.done_at = None
        task.save()
        checklist = Checklist.objects.select_for_update().get(pk=task.checklist_id)
        _settle(checklist)
    return f"Reopened: “{task.title}”."
