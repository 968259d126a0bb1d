"""The bulk side of the case lifecycle (support.cases), for a job that raises or clears many
problems at once (billing reconciliation): opened, raised again, reopened and closed with
the same rules as one case, a history row per case naming the actor, in a fixed number of
queries."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import acting_as, acting_as_user
from support.cases import CaseError, cases_close, cases_open, cases_raise_again
from support.models import Case
from tests.support.case_records import NOW, OPENED, changes, everything, make_case

pytestmark = pytest.mark.django_db
D = Decimal


def new_case(key: str, **fields) -> Case:
    return Case(
        kind=Case.Kind.MISSING_INVOICE,
        summary=f"problem {key}",
        dedupe_key=key,
        opened_at=OPENED,
        **fields,
    )


def test_new_cases_open_with_a_history_row_each_naming_the_job():
    with acting_as("task:reconciliation_run"):
        opened = cases_open(cases=[new_case("a"), new_case("b")], reason="found by run #7")
    assert sorted(Case.objects.values_list("dedupe_key", "state")) == [
        ("a", "open"),
        ("b", "open"),
    ]
    for case in opened:
        assert [
            (h.history_type, h.history_actor, h.history_change_reason) for h in case.history.all()
        ] == [("+", "task:reconciliation_run", "found by run #7")]


def test_only_new_open_cases_are_opened():
    existing = make_case("already there")
    before = everything()
    with acting_as("task:x"), pytest.raises(CaseError):
        cases_open(cases=[new_case("a"), existing], reason="again")
    with acting_as("task:x"), pytest.raises(CaseError):
        cases_open(cases=[new_case("c", state=Case.State.RESOLVED)], reason="closed")
    assert everything() == before


def test_raised_again_a_worked_case_is_updated_a_resolved_one_reopens_a_waived_one_stays(
    ops_lead,
):
    worked = make_case("worked", state=Case.State.ACKNOWLEDGED, owner=ops_lead, found="old")
    same = make_case("unchanged", found="same")
    resolved = make_case("fixed once", state=Case.State.RESOLVED, owner=ops_lead, found="old")
    waived = make_case("lived with", state=Case.State.WAIVED, found="old")
    found = {
        worked: {"found": "new", "found_amount": D("90.00")},
        same: {"found": "same"},
        resolved: {"found": "back", "found_amount": D("80.00")},
        waived: {"found": "new"},
    }
    with acting_as("task:reconciliation_run"):
        counts = cases_raise_again(
            found=found, updated_reason="updated by run #8", reopened_reason="found again by #8"
        )
    assert counts == (1, 1)
    rows = {
        summary: row
        for summary, *row in Case.objects.values_list(
            "summary", "state", "owner", "found", "found_amount", "closed_at", "closing_note"
        )
    }
    assert rows == {
        "worked": ["acknowledged", ops_lead.pk, "new", D("90.00"), None, ""],
        "unchanged": ["open", None, "same", None, None, ""],
        "fixed once": ["open", ops_lead.pk, "back", D("80.00"), None, ""],
        "lived with": ["waived", None, "old", None, OPENED, "done before"],
    }
    job = ("task:reconciliation_run", None)
    assert changes(worked) == [("~", *job, "updated by run #8", "", "acknowledged", ops_lead.pk)]
    assert changes(resolved) == [("~", *job, "found again by #8", "", "open", ops_lead.pk)]
    assert changes(same) == changes(waived) == []


def test_closing_many_closes_those_still_being_worked_with_the_note(ops_lead, superuser):
    unowned = make_case("unowned")
    owned = make_case("owned", state=Case.State.ACKNOWLEDGED, owner=superuser)
    waived = make_case("waived", state=Case.State.WAIVED)
    with time_machine.travel(NOW, tick=False), acting_as_user(ops_lead):
        closed = cases_close(
            cases=Case.objects.all(),
            state=Case.State.RESOLVED,
            note="  Fixed in billing.\n",
            reason="re-checked",
            by=ops_lead,
        )
    assert closed == 2
    assert sorted(
        Case.objects.values_list("summary", "state", "owner", "closed_at", "closing_note")
    ) == [
        ("owned", "resolved", superuser.pk, NOW, "Fixed in billing."),
        # Whoever closes an unowned case owned the outcome.
        ("unowned", "resolved", ops_lead.pk, NOW, "Fixed in billing."),
        ("waived", "waived", None, OPENED, "done before"),
    ]
    olga = ("~", "olga", ops_lead.pk, "re-checked", "", "resolved")
    assert changes(unowned) == [(*olga, ops_lead.pk)]
    assert changes(owned) == [(*olga, superuser.pk)]
    assert changes(waived) == []


def test_closed_by_a_job_a_case_keeps_its_owner_or_none(ops_lead):
    mine = make_case("mine", owner=ops_lead)
    nobodys = make_case("nobody's")
    with acting_as("task:reconciliation_run"):
        assert (
            cases_close(
                cases=Case.objects.all(),
                state=Case.State.RESOLVED,
                note="No longer found.",
                reason="no longer found by run #9",
            )
            == 2
        )
    assert sorted(Case.objects.values_list("summary", "state", "owner")) == [
        ("mine", "resolved", ops_lead.pk),
        ("nobody's", "resolved", None),
    ]
    assert changes(nobodys) == [
        ("~", "task:reconciliation_run", None, "no longer found by run #9", "", "resolved", None)
    ]
    assert changes(mine)[0][3] == "no longer found by run #9"


@pytest.mark.parametrize(
    ("state", "note", "message"),
    [
        ("resolved", "  ", "Say how it was resolved: a case closes with a note."),
        ("waived", None, "Say why it is waived: a case closes with a note."),
        ("open", "a note", "A case closes as resolved or waived, not open."),
    ],
)
def test_closing_many_keeps_the_rules_of_closing_one(ops_lead, state, note, message):
    make_case("open")
    before = everything()
    with acting_as_user(ops_lead), pytest.raises(CaseError) as refused:
        cases_close(cases=Case.objects.all(), state=state, note=note, reason="r", by=ops_lead)
    assert str(refused.value) == message
    assert everything() == before


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_people_who_only_view_cases_may_not_close_many(request, persona):
    user = request.getfixturevalue(persona)
    make_case("open")
    before = everything()
    with acting_as_user(user), pytest.raises(CaseError):
        cases_close(cases=Case.objects.all(), state="waived", note="not mine", reason="r", by=user)
    assert everything() == before


def test_closing_many_costs_the_same_for_3_cases_and_30():
    def close_all() -> int:
        with acting_as("task:x"), CaptureQueriesContext(connection) as queries:
            cases_close(cases=Case.objects.all(), state="resolved", note="gone", reason="gone")
        return len(queries)

    for n in range(3):
        make_case(f"small {n}")
    small = close_all()
    for n in range(30):
        make_case(f"large {n}")
    assert close_all() == small
    assert Case.objects.filter(state="resolved").count() == 33
