"""Cases: every exception ops works (PRODUCT.md "Exceptions"), opened once per problem."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction

from customers.models import Customer
from support.models import Case


def case_dedupe_key(kind: str, subject: str, *details: object) -> str:
    """``<kind>:<subject>[:<detail>...]``, e.g. ``failed_fulfilment:order:ord_17`` or
    ``problem_redemption:entitlement:K7QP-4XMD-9RTW:bob@x.com``.

    ``subject`` is ``<model>:<id>`` with the id the product and ops know the row by (an
    order's order id, an entitlement's code), not its database pk: raising a problem
    from a product event needs no lookup, and seeded demo data names its cases the same
    way in every database.
    """
    return ":".join([kind, subject, *(str(detail) for detail in details)])[:200]


def case_open(
    *,
    kind: str,
    customer: Customer | None,
    subject: models.Model | None,
    summary: str,
    expected: str = "",
    found: str = "",
    dedupe_key: str,
    **extra,
) -> Case:
    """Open the case ``dedupe_key`` names, or return it when it is open already.

    Idempotent: raising the same problem again (same ``dedupe_key``) never makes a second
    case; it updates ``found`` when that changed (with history) while the case is still
    being worked, and leaves a closed case as it was closed. The unique constraint on
    ``dedupe_key`` decides between concurrent openers: the loser of the race gets the
    winner's case. ``extra`` sets other fields of a new case (``expected_amount``, ...).
    """
    values = {
        "kind": kind,
        "customer": customer,
        "summary": summary[:300],
        "expected": expected,
        "found": found,
        **extra,
    }
    if subject is not None:
        values["subject_type"] = ContentType.objects.get_for_model(subject)
        values["subject_id"] = str(subject.pk)
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(dedupe_key=dedupe_key).first()
        if case is None:
            try:
                with transaction.atomic():
                    return Case.objects.create(dedupe_key=dedupe_key, **values)
            except IntegrityError:
                case = Case.objects.select_for_update().get(dedupe_key=dedupe_key)
        if case.found != found and case.state not in Case.CLOSED_STATES:
            case.found = found
            case._change_reason = "the problem was raised again"
            case.save(update_fields=["found"])
        return case
