"""Triage rules: the facts of a ticket, one function per operator, and applying rules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.utils import timezone

from customers.selectors import contract_current
from support import notices
from support.models import Ticket, TriageCondition, TriageRule
from support.ticket_sla import ticket_sla_apply

Op = TriageCondition.Operator
F = TriageCondition.Field


def ticket_facts(*, ticket: Ticket, today: dt.date | None = None) -> dict[str, object]:
    """What conditions can look at: the ticket, its customer and the customer's current
    contract (``customers.selectors.contract_current``). Missing facts are None."""
    today = today or timezone.now().date()
    customer = ticket.customer
    contract = contract_current(customer=customer) if customer is not None else None
    return {
        F.SUBJECT: ticket.subject,
        F.MESSAGE: ticket.message,
        F.CATEGORY: ticket.category,
        F.PRIORITY: ticket.priority,
        F.REQUESTER_EMAIL: ticket.requester_email,
        F.CUSTOMER_MATCHED: "yes" if customer is not None else "no",
        F.CUSTOMER_STATUS: customer.status if customer else None,
        F.PLAN: contract.plan if contract else None,
        F.CONTRACT_STATUS: contract.status if contract else None,
        F.SEATS: contract.seats if contract else None,
        F.DAYS_TO_RENEWAL: (
            (contract.end_date - today).days if contract and contract.end_date else None
        ),
    }


def _text(value: object) -> str:
    return "" if value is None else str(value).strip().lower()


def _number(value: object) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _at_least(fact: object, expected: str) -> bool:
    number = _number(fact)
    return number is not None and number >= float(expected)


def _at_most(fact: object, expected: str) -> bool:
    number = _number(fact)
    return number is not None and number <= float(expected)


OPERATORS: dict[str, Callable[[object, str], bool]] = {
    Op.EQUALS: lambda fact, expected: _text(fact) == _text(expected),
    Op.NOT_EQUALS: lambda fact, expected: _text(fact) != _text(expected),
    Op.CONTAINS: lambda fact, expected: _text(expected) in _text(fact),
    Op.NOT_CONTAINS: lambda fact, expected: _text(expected) not in _text(fact),
    Op.IN: lambda fact, expected: _text(fact) in {_text(v) for v in expected.split(",")},
    Op.GTE: _at_least,
    Op.LTE: _at_most,
    Op.IS_EMPTY: lambda fact, expected: _text(fact) == "",
    Op.IS_NOT_EMPTY: lambda fact, expected: _text(fact) != "",
}


def condition_holds(condition: TriageCondition, facts: dict[str, object]) -> bool:
    return OPERATORS[condition.operator](facts.get(condition.field), condition.value)


def rule_matches(rule: TriageRule, facts: dict[str, object]) -> bool:
    conditions = list(rule.conditions.all())
    if not conditions:
        return True
    results = (condition_holds(c, facts) for c in conditions)
    return all(results) if rule.match_all else any(results)


def triage_apply(*, ticket: Ticket, today: dt.date | None = None) -> list[TriageRule]:
    """Run the active rules on ``ticket`` in order; returns the rules that matched.

    Actions: add tags, set priority (the service levels follow it), put it in a queue,
    assign it. The change is saved once, with the rules named as its reason.
    """
    facts = ticket_facts(ticket=ticket, today=today)
    assignee_before = ticket.assignee_id
    matched = []
    tags = []
    for rule in TriageRule.objects.filter(is_active=True).prefetch_related(
        "conditions", "add_tags"
    ):
        if not rule_matches(rule, facts):
            continue
        matched.append(rule)
        tags.extend(rule.add_tags.all())
        if rule.set_priority:
            ticket.priority = rule.set_priority
            facts[F.PRIORITY] = rule.set_priority
        if rule.assign_queue:
            ticket.queue = rule.assign_queue
        if rule.assign_to_id:
            ticket.assignee_id = rule.assign_to_id
        if rule.stop_processing:
            break
    if matched:
        ticket_sla_apply(ticket=ticket)
        ticket._change_reason = "triage: " + ", ".join(rule.name for rule in matched)
        ticket.save()
        if tags:
            ticket.tags.add(*tags)
        if ticket.assignee_id and ticket.assignee_id != assignee_before:
            notices.ticket_assigned_notify(ticket=ticket, assignee=ticket.assignee, by=None)
    return matched
