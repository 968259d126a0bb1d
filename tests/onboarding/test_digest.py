"""Overdue onboarding tasks in the account manager's digest."""

from __future__ import annotations

import datetime as dt

import pytest

from audit.context import acting_as
from onboarding.services import checklist_generate, checklist_task_done
from opsdesk.health.digest import FALLBACK, digest_build, recipient_for
from tests.checklists import new_contract, new_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def checklists(templates, acme, agent, ops_lead, other_manager):
    checklist_generate(contract=acme.contracts.get())  # Alice's: due 3, 6 and 8 Jan
    bobs = new_contract(new_customer("Bob's", other_manager), start_date=dt.date(2026, 1, 1))
    checklist_generate(contract=bobs)
    orphan = new_contract(new_customer("Orphan"), start_date=dt.date(2026, 1, 1))
    checklist_generate(contract=orphan)


def test_the_managers_digest_lists_the_overdue_tasks_of_their_customers(checklists, manager, agent):
    with acting_as("sam", user=agent):
        from onboarding.models import ChecklistTask

        checklist_task_done(
            task=ChecklistTask.objects.get(title="Link CRM record CRM-1001"), user=agent
        )

    digest = digest_build(date=dt.date(2026, 1, 8), recipient=recipient_for(f"user:{manager.pk}"))

    # Due 3 Jan and open: listed; CRM link done; SSO due 8 Jan: not overdue yet on 8 Jan.
    assert (
        "OVERDUE ONBOARDING TASKS (1)\n* Acme Corp: Kick-off call with Acme Corp, due 3 Jan, Alice"
        in digest.text
    )
    assert "Configure SSO" not in digest.text and "Bob's" not in digest.text
    assert "Overdue onboarding tasks (1)" in digest.html
    assert (
        f"/admin/customers/customer/{checklist_customer(digest)}/change/#onboarding" in digest.text
    )


def checklist_customer(digest):
    from customers.models import Customer

    return Customer.objects.get(name="Acme Corp").pk


def test_customers_without_a_manager_go_to_the_fallback_digest(checklists):
    digest = digest_build(date=dt.date(2026, 1, 8), recipient=recipient_for(FALLBACK))
    assert "* Orphan: Kick-off call with Orphan, due 3 Jan, unassigned" in digest.text


def test_nothing_overdue_adds_no_section(checklists, manager):
    digest = digest_build(date=dt.date(2026, 1, 3), recipient=recipient_for(f"user:{manager.pk}"))
    assert "ONBOARDING" not in digest.text
    assert "Overdue onboarding" not in digest.html
