"""Who owns which field (docs/contracts/crm.md): once the CRM has sent an account or a
contract, every field it sends is read-only in the admin, under a note naming the CRM as
the source; a record the CRM has not sent (a CRM id typed in included) is edited as
before, and what opsdesk keeps itself stays editable."""

import pytest
from django.urls import reverse

from customers.crm import CRM_OWNED
from customers.models import Contact, Contract, Customer
from tests import builders
from tests.customers.crm_sender import CRM_SECRET, account, contract, crm_deliver
from tests.customers.test_row_rule import form_body

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _secrets(settings):
    settings.OPSDESK_CRM_WEBHOOK_SECRETS = [CRM_SECRET]


@pytest.fixture
def linked(manager) -> tuple[Customer, Contract]:
    """Acme and its contract as the CRM sent them."""
    crm_deliver(account(), "msg_a1")
    crm_deliver(contract(), "msg_c1")
    return Customer.objects.get(crm_id="001Dn00000Acme"), Contract.objects.get()


@pytest.fixture
def typed(manager) -> tuple[Customer, Contract]:
    """Globex and its contract as typed in opsdesk, the CRM id too: not sent by the CRM."""
    globex = builders.customer(
        external_id="globex-1", name="Globex", account_manager=manager, crm_id="CRM-9"
    )
    return globex, builders.contract(customer=globex, crm_id="800-9")


@pytest.fixture
def elsewhere(other_manager) -> Customer:
    return builders.customer(external_id="initech-1", name="Initech")


def new_value(model, name: str, elsewhere: Customer, other_manager) -> list[str]:
    """A value for field ``name`` that the record does not hold, as a browser posts it."""
    return {
        (Customer, "name"): ["Renamed"],
        (Customer, "external_id"): ["renamed-1"],
        (Customer, "account_manager"): [str(other_manager.pk)],
        (Customer, "status"): ["paused"],
        (Customer, "crm_id"): ["CRM-OTHER"],
        (Contract, "customer"): [str(elsewhere.pk)],
        (Contract, "plan"): ["starter"],
        (Contract, "seats"): ["7"],
        (Contract, "monthly_fee"): ["9.00"],
        (Contract, "price_per_extra_seat"): ["1.00"],
        (Contract, "currency"): ["USD"],
        (Contract, "start_date"): ["2026-01-02"],
        (Contract, "end_date"): ["2031-12-31"],
        (Contract, "status"): ["cancelled"],
        (Contract, "integrations"): ["api"],
        (Contract, "crm_id"): ["800-OTHER"],
    }[model, name]


OWNED = [(model, name) for model, names in CRM_OWNED.items() for name in names]
IDS = [f"{model.__name__}.{name}" for model, name in OWNED]


def test_the_walk_covers_every_field_the_crm_sends():
    assert [
        (Customer, "name"),
        (Customer, "external_id"),
        (Customer, "account_manager"),
        (Customer, "status"),
        (Customer, "crm_id"),
        (Contract, "customer"),
        (Contract, "plan"),
        (Contract, "seats"),
        (Contract, "monthly_fee"),
        (Contract, "price_per_extra_seat"),
        (Contract, "currency"),
        (Contract, "start_date"),
        (Contract, "end_date"),
        (Contract, "status"),
        (Contract, "integrations"),
        (Contract, "crm_id"),
    ] == OWNED


def change_url(record) -> str:
    opts = record._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[record.pk])


def stored(record) -> dict:
    """The record's fields as stored, but when it was last saved (a save of nothing
    touches it)."""
    values = type(record).objects.filter(pk=record.pk).values().get()
    del values["updated_at"]
    return values


def the_one(pair, model):
    return next(record for record in pair if isinstance(record, model))


@pytest.mark.parametrize(("model", "name"), OWNED, ids=IDS)
def test_a_field_the_crm_sent_is_read_only_and_a_crafted_post_changes_nothing(
    client, superuser, linked, elsewhere, other_manager, model, name
):
    record = the_one(linked, model)
    client.force_login(superuser)
    page = client.get(change_url(record))
    assert name not in page.context_data["adminform"].form.fields
    before = stored(record)

    body = form_body(client, change_url(record))
    response = client.post(
        change_url(record), {**body, name: new_value(model, name, elsewhere, other_manager)}
    )

    assert response.status_code == 302  # saved: what the CRM sent is not part of the form
    assert stored(record) == before


@pytest.mark.parametrize(("model", "name"), OWNED, ids=IDS)
def test_a_record_the_crm_has_not_sent_is_edited_as_before(
    client, superuser, typed, elsewhere, other_manager, model, name
):
    record = the_one(typed, model)
    client.force_login(superuser)
    body = form_body(client, change_url(record))
    value = new_value(model, name, elsewhere, other_manager)

    response = client.post(change_url(record), {**body, name: value})

    assert response.status_code == 302, response.context_data["adminform"].form.errors
    after = stored(record)
    field = model._meta.get_field(name)
    shown = after[field.attname]
    expected = {"integrations": [value[0]], "seats": 7}.get(name, value[0])
    if field.is_relation:
        expected = int(value[0])
    assert str(shown) == str(expected)


@pytest.mark.parametrize("model", [Customer, Contract], ids=["account", "contract"])
def test_the_page_of_a_linked_record_says_the_crm_is_the_source(client, manager, linked, model):
    record = the_one(linked, model)
    client.force_login(manager)
    page = client.get(change_url(record)).content.decode()
    what = "account" if model is Customer else "contract"
    assert (
        f'<p class="od-crm-note" data-testid="crm-note">From the CRM: this {what} is CRM '
        f"{what} <strong>{record.crm_id}</strong>, last changed there on "
    ) in page
    assert "change it in the CRM" in page


def test_the_page_of_a_typed_record_has_no_crm_note(client, manager, typed):
    client.force_login(manager)
    for record in typed:
        assert 'data-testid="crm-note"' not in client.get(change_url(record)).content.decode()


def test_what_opsdesk_keeps_of_a_linked_customer_stays_editable(client, manager, linked):
    acme, _ = linked
    client.force_login(manager)  # Alice manages Acme, as the CRM says
    response = client.post(
        reverse("admin:customers_contact_add"),
        {"customer": acme.pk, "name": "Pia Primary", "email": "pia@acme.test", "role": "admin"},
    )
    assert response.status_code == 302
    assert Contact.objects.get().customer == acme


def test_when_the_crm_last_changed_a_record_is_never_editable(client, superuser, typed):
    client.force_login(superuser)
    for record in typed:
        form = client.get(change_url(record)).context_data["adminform"].form
        assert "crm_updated_at" not in form.fields
