"""Two people resolving one case at the same time ("Revoke and reissue" clicked twice):
the case is locked and re-checked inside the resolution, so one resolution applies and
the other is refused; one new entitlement, not two."""

from __future__ import annotations

import pytest

from audit.context import acting_as_user
from customers.models import Entitlement
from opsdesk.casework.resolutions import ResolutionError, case_resolve
from support.models import Case
from tests.concurrency import at_once

NOTE = "Checked with the customer's admin."


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_revoke_and_reissue_of_one_case_apply_once(
    wrong_user_case, assigned, ops_lead
):
    def resolve_it(i):
        case = Case.objects.get(pk=wrong_user_case.pk)  # each read it open
        with acting_as_user(ops_lead):
            return case_resolve(case=case, key="revoke_reissue", data={}, note=NOTE, by=ops_lead)

    results = at_once(2, resolve_it)

    [error] = [r for r in results if isinstance(r, ResolutionError)]
    assert str(error) == f"Case #{wrong_user_case.pk} is resolved already."
    assert Case.objects.get(pk=wrong_user_case.pk).state == "resolved"
    assert sorted(Entitlement.objects.values_list("state", flat=True)) == ["assigned", "revoked"]
    assert wrong_user_case.history.filter(state="resolved").count() == 1
