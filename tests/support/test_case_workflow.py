"""Working a case (docs/product.md#exceptions): acknowledge, assign, close with a note.

Each service checks the person may work cases, refuses with ``CaseError`` changing
nothing, and leaves history naming the actor and the reason.
"""

from __future__ import annotations

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.context import acting_as, acting_as_user
from support.cases import CaseError, case_close, case_owners, cases_acknowledge, cases_assign
from support.models import Case
from tests.support.case_records import NOW, OPENED, changes, everything, make_case

pytestmark = pytest.mark.django_db

# --- Acknowledge ----------------------------------------------------------------------------


def test_acknowledging_takes_open_cases_and_gives_the_unowned_ones_to_whoever_acknowledged(
    ops_lead, superuser
):
    unowned = make_case("unowned")
    owned = make_case("owned by root", owner=superuser)

    with time_machine.travel(NOW, tick=False), acting_as_user(ops_lead):
        count = cases_acknowledge(cases=Case.objects.all(), by=ops_lead)

    assert count == 2
    unowned.refresh_from_db()
    owned.refresh_from_db()
    assert (unowned.state, unowned.acknowledged_at, unowned.owner) == (
        "acknowledged",
        NOW,
        ops_lead,
    )
    assert (owned.state, owned.acknowledged_at, owned.owner) == ("acknowledged", NOW, superuser)
    assert changes(unowned) == [
        (
            "~",
            "olga",
            ops_lead.pk,
            "acknowledged and taken by Olga",
            "",
            "acknowledged",
            ops_lead.pk,
        ),
    ]
    assert changes(owned) == [
        ("~", "olga", ops_lead.pk, "acknowledged", "", "acknowledged", superuser.pk),
    ]


def test_acknowledged_and_closed_cases_are_left_as_they_were(ops_lead):
    acknowledged = make_case("on it", state=Case.State.ACKNOWLEDGED)
    resolved = make_case("fixed", state=Case.State.RESOLVED)
    waived = make_case("let go", state=Case.State.WAIVED)
    before = everything()

    with acting_as_user(ops_lead):
        count = cases_acknowledge(cases=Case.objects.all(), by=ops_lead)

    assert count == 0
    assert everything() == before
    for case in (acknowledged, resolved, waived):
        assert changes(case) == []


def test_only_the_cases_asked_for_are_acknowledged(ops_lead):
    mine = make_case("mine")
    other = make_case("someone else's")

    with acting_as_user(ops_lead):
        assert cases_acknowledge(cases=Case.objects.filter(pk=mine.pk), by=ops_lead) == 1

    other.refresh_from_db()
    assert (other.state, other.acknowledged_at, other.owner, changes(other)) == (
        "open",
        None,
        None,
        [],
    )


def test_acknowledged_by_a_scheduled_job_a_case_stays_unowned(db):
    case = make_case("raised by billing")

    with time_machine.travel(NOW, tick=False), acting_as("task:reconcile"):
        assert cases_acknowledge(cases=Case.objects.all()) == 1

    case.refresh_from_db()
    assert (case.state, case.acknowledged_at, case.owner) == ("acknowledged", NOW, None)
    assert changes(case) == [
        ("~", "task:reconcile", None, "acknowledged", "", "acknowledged", None)
    ]


@pytest.mark.parametrize("persona", ["agent", "manager", "outsider"])
def test_people_who_only_view_cases_may_not_acknowledge_them(request, persona):
    user = request.getfixturevalue(persona)
    make_case("open one")
    before = everything()

    with acting_as_user(user), pytest.raises(CaseError) as refused:
        cases_acknowledge(cases=Case.objects.all(), by=user)

    assert str(refused.value) == "You may not do this: it needs the permission support.change_case"
    assert everything() == before


# --- Assign -------------------------------------------------------------------------------


def test_who_may_own_a_case_is_active_staff_who_may_change_cases(
    agent, manager, ops_lead, superuser, outsider
):
    direct = User.objects.create_user(username="dora", is_staff=True)
    direct.user_permissions.add(Permission.objects.get(codename="change_case"))
    User.objects.create_user(username="nils", is_superuser=True, is_staff=False)
    gone = User.objects.create_user(username="gone", is_staff=True, is_superuser=True)
    gone.is_active = False
    gone.save()

    assert list(case_owners()) == [direct, ops_lead, superuser]


def test_cases_still_being_worked_are_assigned_closed_ones_keep_their_owner(ops_lead, superuser):
    open_case = make_case("open")
    acknowledged = make_case("acknowledged", state=Case.State.ACKNOWLEDGED, owner=ops_lead)
    already = make_case("root's already", owner=superuser)
    resolved = make_case("resolved", state=Case.State.RESOLVED, owner=ops_lead)
    waived = make_case("waived", state=Case.State.WAIVED)

    with acting_as_user(ops_lead):
        count = cases_assign(cases=Case.objects.all(), owner=superuser, by=ops_lead)

    assert count == 2
    owners = dict(Case.objects.values_list("summary", "owner_id"))
    assert owners == {
        "open": superuser.pk,
        "acknowledged": superuser.pk,
        "root's already": superuser.pk,
        "resolved": ops_lead.pk,
        "waived": None,
    }
    assigned = ("~", "olga", ops_lead.pk, "assigned to Root", "")
    assert changes(open_case) == [(*assigned, "open", superuser.pk)]
    assert changes(acknowledged) == [(*assigned, "acknowledged", superuser.pk)]
    for case in (already, resolved, waived):
        assert changes(case) == []


@pytest.mark.parametrize("persona", ["agent", "manager", "outsider"])
def test_a_case_goes_only_to_someone_who_may_work_it(request, ops_lead, persona):
    user = request.getfixturevalue(persona)
    make_case("open")
    make_case("acknowledged", state=Case.State.ACKNOWLEDGED, owner=ops_lead)
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(CaseError) as refused:
        cases_assign(cases=Case.objects.all(), owner=user, by=ops_lead)

    name = user.get_full_name() or user.get_username()
    assert str(refused.value) == f"{name} may not work cases; pick someone who may."
    assert everything() == before


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_people_who_only_view_cases_may_not_assign_them(request, ops_lead, persona):
    user = request.getfixturevalue(persona)
    make_case("open")
    before = everything()

    with acting_as_user(user), pytest.raises(CaseError) as refused:
        cases_assign(cases=Case.objects.all(), owner=ops_lead, by=user)

    assert str(refused.value) == "You may not do this: it needs the permission support.change_case"
    assert everything() == before


# --- Close --------------------------------------------------------------------------------


def test_resolving_with_a_note_closes_the_case_and_gives_it_to_whoever_closed_it(ops_lead):
    case = make_case("order stuck")

    with time_machine.travel(NOW, tick=False), acting_as_user(ops_lead):
        closed = case_close(
            case=case,
            state=Case.State.RESOLVED,
            note="  Issued by hand in the product.\n",
            by=ops_lead,
        )

    case.refresh_from_db()
    assert closed == case
    assert (case.state, case.closing_note, case.closed_at, case.owner) == (
        "resolved",
        "Issued by hand in the product.",
        NOW,
        ops_lead,
    )
    assert changes(case) == [
        ("~", "olga", ops_lead.pk, "Issued by hand in the product.", "", "resolved", ops_lead.pk)
    ]


def test_waiving_an_owned_case_keeps_its_owner(ops_lead, superuser):
    case = make_case("known gap", state=Case.State.ACKNOWLEDGED, owner=superuser)

    with time_machine.travel(NOW, tick=False), acting_as_user(ops_lead):
        case_close(case=case, state=Case.State.WAIVED, note="Accepted: test tenant.", by=ops_lead)

    case.refresh_from_db()
    assert (case.state, case.closing_note, case.closed_at, case.acknowledged_at, case.owner) == (
        "waived",
        "Accepted: test tenant.",
        NOW,
        OPENED,
        superuser,
    )
    assert changes(case) == [
        ("~", "olga", ops_lead.pk, "Accepted: test tenant.", "", "waived", superuser.pk)
    ]


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("resolved", "Say how it was resolved: a case closes with a note."),
        ("waived", "Say why it is waived: a case closes with a note."),
    ],
)
@pytest.mark.parametrize("note", ["", "   \n\t", None])
def test_a_case_does_not_close_without_a_note_and_the_database_is_never_asked(
    ops_lead, state, message, note
):
    case = make_case("open")
    before = everything()
    ops_lead.has_perm("support.change_case")  # the permission cache, filled outside the count

    with (
        acting_as_user(ops_lead),
        CaptureQueriesContext(connection) as queries,
        pytest.raises(CaseError) as refused,
    ):
        case_close(case=case, state=state, note=note, by=ops_lead)

    assert str(refused.value) == message
    # Refused before reading or writing the case: the check constraint
    # case_closed_has_note is never what stops it.
    assert [q["sql"] for q in queries if '"support_case"' in q["sql"]] == []
    assert everything() == before


@pytest.mark.parametrize("state", ["resolved", "waived"])
def test_a_closed_case_is_not_closed_again_even_from_a_stale_copy(ops_lead, state):
    case = make_case("done", state=state, closing_note="first close")
    stale = Case.objects.get(pk=case.pk)
    stale.state = Case.State.OPEN  # as read before someone else closed it
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(CaseError) as refused:
        case_close(case=stale, state=Case.State.WAIVED, note="again", by=ops_lead)

    assert str(refused.value) == f"Case #{case.pk} is {state} already."
    assert everything() == before


@pytest.mark.parametrize("state", ["open", "acknowledged", "closed"])
def test_a_case_closes_only_as_resolved_or_waived(ops_lead, state):
    make_case("open")
    before = everything()

    with acting_as_user(ops_lead), pytest.raises(CaseError) as refused:
        case_close(case=Case.objects.get(), state=state, note="a note", by=ops_lead)

    assert str(refused.value) == f"A case closes as resolved or waived, not {state}."
    assert everything() == before


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_people_who_only_view_cases_may_not_close_them(request, persona):
    user = request.getfixturevalue(persona)
    case = make_case("open")
    before = everything()

    with acting_as_user(user), pytest.raises(CaseError) as refused:
        case_close(case=case, state=Case.State.WAIVED, note="not mine to waive", by=user)

    assert str(refused.value) == "You may not do this: it needs the permission support.change_case"
    assert everything() == before
