"""The demo's onboarding: a default template set and the checklists of recent contracts.

Called by ``opsdesk.demo.seed_demo``; idempotent like it (templates by name, one
checklist per contract), so a second run creates nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
from collections import Counter

from django.utils import timezone

from audit.context import acting_as, acting_as_user, recorded_at
from customers.models import Contract
from onboarding.models import ChecklistTemplate, Role, TemplateItem
from onboarding.services import checklist_generate, checklist_task_done

# Contracts that started this recently get a checklist in the demo (older ones were
# onboarded before opsdesk tracked it).
RECENT_DAYS = 90

INTEGRATION = Contract.Integration
DEFAULT_TEMPLATES = {
    ("Standard onboarding", ""): [
        # (title, text, role, due offset, conditions)
        (
            "Kick-off call with {customer}",
            "Walk {primary_contact} through the rollout plan for {seats} seats on {plan}; "
            "agree the go-live date.",
            Role.ACCOUNT_MANAGER,
            3,
            {},
        ),
        (
            "Create the tenant admins",
            "Invite the admins named by {primary_contact} to tenant {tenant_id}.",
            Role.SUPPORT,
            5,
            {},
        ),
        (
            "Set up single sign-on",
            "Configure SSO for {customer} with {technical_contact}; test one login per role.",
            Role.SUPPORT,
            10,
            {"integration": INTEGRATION.SSO},
        ),
        (
            "Connect the CRM sync",
            "Link CRM record {crm_id} and run the first sync; check owners and stages map.",
            Role.OPS,
            10,
            {"integration": INTEGRATION.CRM_SYNC},
        ),
        (
            "Run the initial data import",
            "Import {customer}'s historical data; send {technical_contact} the import report.",
            Role.OPS,
            14,
            {"integration": INTEGRATION.DATA_IMPORT},
        ),
        (
            "Issue API keys",
            "Create production and sandbox keys for {technical_contact}.",
            Role.SUPPORT,
            7,
            {"integration": INTEGRATION.API},
        ),
        (
            "Admin training",
            "Two training sessions for {customer}'s admins ({seats} seats), booked by "
            "{account_manager}.",
            Role.ACCOUNT_MANAGER,
            21,
            {"seats_above": 50},
        ),
        (
            "Go-live check",
            "Check usage, SSO and integrations ({integrations}) with {primary_contact}; "
            "hand over to support.",
            Role.ACCOUNT_MANAGER,
            30,
            {},
        ),
    ],
    ("Enterprise onboarding", Contract.Plan.ENTERPRISE): [
        (
            "Security review",
            "Answer {customer}'s security questionnaire and agree the DPA before go-live.",
            Role.OPS,
            14,
            {},
        ),
        (
            "Write the success plan",
            "Goals and milestones for {seats} seats, reviewed with {primary_contact}.",
            Role.ACCOUNT_MANAGER,
            21,
            {},
        ),
    ],
}


def seed_templates(created: Counter) -> None:
    existing = set(ChecklistTemplate.objects.values_list("name", flat=True))
    for (name, plan), items in DEFAULT_TEMPLATES.items():
        if name in existing:
            continue
        template = ChecklistTemplate.objects.create(name=name, plan=plan)
        created["checklist templates"] += 1
        for position, (title, text, role, offset, conditions) in enumerate(items, 1):
            item = TemplateItem(
                template=template,
                position=position,
                title=title,
                text=text,
                role=role,
                due_offset_days=offset,
                **conditions,
            )
            item.full_clean()
            item.save()
            created["template items"] += 1


def seed_checklists(*, seed: int, today: dt.date, created: Counter) -> None:
    """Checklists of the active contracts started in the last 90 days; the tasks due
    before today were mostly done, a few are overdue. Their history is the demo's past:
    each checklist generated when its contract went live (by the activation task), each
    task done by its owner at the moment it was done."""
    contracts = (
        Contract.objects.filter(
            status=Contract.Status.ACTIVE,
            start_date__gte=today - dt.timedelta(days=RECENT_DAYS),
            start_date__lte=today,
            checklist__isnull=True,
        )
        .select_related("customer__account_manager")
        .order_by("pk")
    )
    tz = timezone.get_current_timezone()
    for contract in contracts:
        rng = random.Random(f"{seed}:onboarding:{contract.customer.external_id}")
        start = dt.datetime.combine(contract.start_date, dt.time(9), tz)
        with acting_as("task:checklist_generate"), recorded_at(start):
            checklist = checklist_generate(contract=contract, activated_at=start)
        created["checklists"] += 1
        for task in checklist.tasks.select_related("owner").order_by("due_date", "position"):
            created["checklist tasks"] += 1
            if task.due_date >= today or rng.random() < 0.15:
                continue  # not due yet, or overdue
            day = max(contract.start_date, task.due_date - dt.timedelta(days=rng.randint(0, 3)))
            at = dt.datetime.combine(day, dt.time(rng.randint(9, 17), rng.randint(0, 59)), tz)
            if at < timezone.now():
                by = acting_as_user(task.owner) if task.owner else contextlib.nullcontext()
                with by, recorded_at(at):
                    checklist_task_done(task=task, user=task.owner, at=at)


def seed_onboarding(
    *,
    seed: int,
    today: dt.date,
    created: Counter,
    set_up_at: dt.datetime | None = None,
    set_up_by=None,
) -> None:
    """The templates (set up by ``set_up_by`` at ``set_up_at``; default the current actor,
    now) and the checklists."""
    by = acting_as_user(set_up_by) if set_up_by else contextlib.nullcontext()
    with by, recorded_at(set_up_at):
        seed_templates(created)
    seed_checklists(seed=seed, today=today, created=created)
