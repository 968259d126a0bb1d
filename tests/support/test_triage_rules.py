"""Triage rules: each operator, rule order, and what a matching rule does to a ticket."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from audit.context import acting_as
from support.models import Tag, Ticket, TriageCondition, TriageRule
from support.triage import OPERATORS, ticket_facts, triage_apply
from support.webhooks import event_process, event_receive
from tests import builders
from tests.support.sender import SECRET, signed, support_request

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 11, 21)
ASKED = dt.datetime(2026, 11, 21, 9, 30, tzinfo=dt.UTC)


def make_ticket(customer=None, **fields):
    values = {
        "subject": "SSO login loops",
        "message": "After the IdP change we loop",
        "category": "access",
        "priority": "normal",
        "requester_email": "jo@acme.com",
        "created_at": ASKED,
        **fields,
    }
    with acting_as("test:fixture"):
        return builders.ticket(customer=customer, **values)


def make_rule(name, conditions=(), *, position=100, tags=(), **actions):
    with acting_as("test:fixture"):
        rule = TriageRule.objects.create(name=name, position=position, **actions)
        for field, operator, value in conditions:
            TriageCondition.objects.create(rule=rule, field=field, operator=operator, value=value)
        for tag in tags:
            rule.add_tags.add(Tag.objects.get_or_create(name=tag)[0])
    return rule


def test_the_facts_cover_ticket_customer_and_contract(customer):
    ticket = make_ticket(customer)
    assert ticket_facts(ticket=ticket, today=TODAY) == {
        "subject": "SSO login loops",
        "message": "After the IdP change we loop",
        "category": "access",
        "priority": "normal",
        "requester_email": "jo@acme.com",
        "customer_matched": "yes",
        "customer_status": "active",
        "plan": "growth",
        "contract_status": "active",
        "seats": 50,
        "days_to_renewal": 40,  # ends 31 Dec 2026
    }


def test_an_unknown_customer_has_no_contract_facts(db):
    facts = ticket_facts(ticket=make_ticket(None), today=TODAY)
    assert facts["customer_matched"] == "no"
    assert (facts["plan"], facts["seats"], facts["days_to_renewal"]) == (None, None, None)


@pytest.mark.parametrize(
    ("operator", "fact", "value", "expected"),
    [
        ("equals", "Growth", "growth", True),
        ("equals", "growth", "starter", False),
        ("not_equals", "growth", "starter", True),
        ("not_equals", "growth", "GROWTH", False),
        ("contains", "SSO login loops", "login", True),
        ("contains", "SSO login loops", "invoice", False),
        ("not_contains", "SSO login loops", "invoice", True),
        ("not_contains", "SSO login loops", "sso", False),
        ("in", "enterprise", "growth, enterprise", True),
        ("in", "starter", "growth,enterprise", False),
        ("gte", 50, "50", True),
        ("gte", 49, "50", False),
        ("gte", None, "0", False),
        ("lte", 30, "30", True),
        ("lte", 31, "30", False),
        ("lte", None, "30", False),
        ("is_empty", "", "", True),
        ("is_empty", None, "", True),
        ("is_empty", "x", "", False),
        ("is_not_empty", "x", "", True),
        ("is_not_empty", "  ", "", False),
    ],
)
def test_each_operator(operator, fact, value, expected):
    assert OPERATORS[operator](fact, value) is expected


def test_every_operator_is_implemented():
    assert set(OPERATORS) == set(TriageCondition.Operator.values)


def test_a_matching_rule_tags_sets_priority_and_deadline_queues_and_assigns(customer, agent):
    rule = make_rule(
        "Enterprise-size SSO",
        [("seats", "gte", "50"), ("subject", "contains", "sso")],
        tags=["sso", "vip"],
        set_priority="urgent",
        assign_queue="identity",
        assign_to=agent,
    )
    ticket = make_ticket(customer)
    assert triage_apply(ticket=ticket, today=TODAY) == [rule]
    ticket.refresh_from_db()
    assert sorted(t.name for t in ticket.tags.all()) == ["sso", "vip"]
    assert (ticket.priority, ticket.queue, ticket.assignee) == ("urgent", "identity", agent)
    # Urgent on Growth: one business hour; asked on a Saturday, due Monday 10:00.
    assert ticket.first_response_due_at == dt.datetime(2026, 11, 23, 10, tzinfo=dt.UTC)
    assert ticket.history.filter(history_change_reason="triage: Enterprise-size SSO").exists()


def test_all_conditions_must_hold_unless_the_rule_says_any(customer):
    make_rule("both", [("plan", "equals", "growth"), ("category", "equals", "billing")],
              tags=["both"])  # fmt: skip
    make_rule("either", [("plan", "equals", "growth"), ("category", "equals", "billing")],
              tags=["either"], match_all=False)  # fmt: skip
    ticket = make_ticket(customer)
    triage_apply(ticket=ticket, today=TODAY)
    assert [t.name for t in ticket.tags.all()] == ["either"]


def test_rules_run_in_order_and_a_stopping_rule_ends_the_run(customer):
    make_rule("later", position=20, set_priority="low", tags=["later"])
    make_rule("first", position=10, set_priority="high", stop_processing=True, tags=["first"])
    make_rule("never", position=30, tags=["never"])
    ticket = make_ticket(customer)
    assert [r.name for r in triage_apply(ticket=ticket, today=TODAY)] == ["first"]
    assert (ticket.priority, [t.name for t in ticket.tags.all()]) == ("high", ["first"])


def test_a_later_rule_sees_the_priority_an_earlier_one_set(customer):
    make_rule("raise", position=1, set_priority="urgent")
    make_rule("page", [("priority", "equals", "urgent")], position=2, assign_queue="on-call")
    ticket = make_ticket(customer)
    triage_apply(ticket=ticket, today=TODAY)
    assert ticket.queue == "on-call"


def test_inactive_rules_and_no_match_leave_the_ticket_untouched(customer):
    make_rule("off", is_active=False, set_priority="urgent")
    make_rule("no match", [("plan", "equals", "starter")], set_priority="urgent")
    ticket = make_ticket(customer)
    before = ticket.history.count()
    assert triage_apply(ticket=ticket, today=TODAY) == []
    assert ticket.priority == "normal"
    assert ticket.history.count() == before


def test_renewal_rules_use_days_until_the_contract_ends(customer):
    make_rule("renewal soon", [("days_to_renewal", "lte", "30")], tags=["renewal"])
    assert triage_apply(ticket=make_ticket(customer), today=dt.date(2026, 12, 1)) != []
    assert triage_apply(ticket=make_ticket(customer), today=dt.date(2026, 11, 1)) == []


def test_rules_run_on_tickets_from_the_product(customer, settings):
    settings.OPSDESK_WEBHOOK_SECRETS = [SECRET]
    make_rule("billing to finance", [("category", "equals", "billing")], assign_queue="finance")
    body, headers = signed(support_request(category="billing"), webhook_id="msg_b")
    event_process(event_id=event_receive(body=body, headers=headers).event.pk)
    ticket = Ticket.objects.get()
    assert ticket.queue == "finance"
    assert ticket.history.filter(history_actor="webhook:msg_b").count() >= 2


@pytest.mark.parametrize(
    ("operator", "value", "message"),
    [
        ("gte", "fifty", "Enter a number for this operator."),
        ("equals", "  ", "Enter a value to compare with."),
    ],
)
def test_a_condition_with_an_unusable_value_is_refused_with_a_message(operator, value, message):
    condition = TriageCondition(field="seats", operator=operator, value=value)
    with pytest.raises(ValidationError) as refused:
        condition.clean()
    assert refused.value.message_dict == {"value": [message]}


def test_support_edits_rules_in_the_admin(client, agent):
    client.force_login(agent)
    response = client.post(
        "/admin/support/triagerule/add/",
        {
            "name": "Billing questions",
            "position": "10",
            "is_active": "on",
            "match_all": "on",
            "set_priority": "",
            "assign_queue": "finance",
            "conditions-TOTAL_FORMS": "1",
            "conditions-INITIAL_FORMS": "0",
            "conditions-0-field": "seats",
            "conditions-0-operator": "gte",
            "conditions-0-value": "lots",
        },
    )
    assert response.status_code == 200  # the form comes back with the error
    assert "Enter a number for this operator." in response.content.decode()
    assert TriageRule.objects.count() == 0
