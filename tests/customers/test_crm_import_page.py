"""The CRM imports' pages (customers.admin_crm_import): ops leads upload the CRM's exports,
which are checked at once (a bad file is a 400 with the reason, nothing stored), stored
and run by the worker; each import's page shows its progress, then its counts and rows,
every value from the files escaped; the sweep picks up an import whose run was lost."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audit.context import acting_as
from customers import crm_import as importing
from customers.models import Contract, CrmImport, Customer
from kit.dates import moment_text
from tests.customers.crm_files import (
    ACCOUNT,
    ACCOUNTS_HEADER,
    CONTRACTS_HEADER,
    account,
    contract,
)

pytestmark = pytest.mark.django_db

UPLOAD = "/admin/customers/crmimport/upload/"
T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def published(monkeypatch):
    """The import runs handed to the worker after commit (kit.publish)."""
    calls = []
    monkeypatch.setattr(importing, "publish_after_commit", lambda *args: calls.append(args))
    return calls


def csv_file(name: str, content: str | bytes) -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/csv")


def upload(client, accounts, contracts=None):
    files = {"accounts": csv_file("accounts.csv", accounts)} if accounts is not None else {}
    if contracts is not None:
        files["contracts"] = csv_file("contracts.csv", contracts)
    return client.post(UPLOAD, files)


def page(client, record) -> str:
    response = client.get(reverse("admin:customers_crmimport_change", args=[record.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("persona", ["agent", "manager"])
def test_only_whoever_may_take_crm_records_by_hand_may_upload(client, request, persona, published):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(UPLOAD).status_code == 403
    response = upload(client, ACCOUNTS_HEADER + account(), CONTRACTS_HEADER + contract())
    assert response.status_code == 403
    assert (CrmImport.objects.count(), Customer.objects.count(), published) == (0, 0, [])


def test_an_ops_leads_upload_is_stored_queued_then_run_in_their_name(
    client, ops_lead, manager, published, django_capture_on_commit_callbacks
):
    client.force_login(ops_lead)
    assert client.get(UPLOAD).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, ACCOUNTS_HEADER + account(), CONTRACTS_HEADER + contract())
    record = CrmImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:customers_crmimport_change", args=[record.pk])
    assert (record.status, record.requested_by, record.started_by) == ("queued", ops_lead, "olga")
    assert bytes(record.accounts_csv) == (ACCOUNTS_HEADER + account()).encode()
    assert published == [("customers.crm_import_run", record.pk)]
    assert Customer.objects.count() == 0  # the worker takes the rows
    assert 'http-equiv="refresh"' in page(client, record)

    with acting_as("task:crm_import_run"):
        assert importing.crm_import_run(import_id=record.pk) == record
    record.refresh_from_db()
    assert (record.status, record.progress, record.attempts) == ("succeeded", 100, 1)
    assert (bytes(record.accounts_csv), bytes(record.contracts_csv)) == (b"", b"")
    taken = Customer.objects.get(crm_id=ACCOUNT).history.get()
    assert (taken.history_actor, taken.history_user) == ("olga", ops_lead)
    assert Contract.objects.get().history.get().history_user == ops_lead
    html = page(client, record)
    assert " · by Olga · " in html and "by olga" not in html  # by name, not username
    listed = client.get(reverse("admin:customers_crmimport_changelist")).content.decode()
    assert f">{moment_text(record.received_at)}<" in listed  # the one date style
    assert ">Olga<" in listed
    assert 'http-equiv="refresh"' not in html
    assert 'aria-valuenow="100"' in html
    assert '<td>Accounts</td><td class="num">1</td>' in html

    # A second delivery of the task finds it done, and does nothing.
    assert importing.crm_import_run(import_id=record.pk) is None
    assert CrmImport.objects.get().attempts == 1


@pytest.mark.parametrize(
    ("accounts", "contracts", "field", "why"),
    [
        (None, None, "accounts", "This field is required."),
        (
            b"crm_id,name,updated_at\n001A,Caf\xe9,2026-11-21T09:29:41Z\n",
            None,
            "accounts",
            "The accounts file is not UTF-8 text: export it from the CRM as CSV (UTF-8).",
        ),
        (
            b"%PDF-1.7\n\x00\x01",
            None,
            "accounts",
            "The accounts file is not CSV text (it holds NUL bytes): export it from the CRM as "
            "CSV (UTF-8).",
        ),
        (
            "crm_id;name;updated_at\n001A;Acme;2026-11-21T09:29:41Z\n",
            None,
            "accounts",
            "The accounts file&#x27;s header lacks crm_id, name, updated_at:",
        ),
        (
            CONTRACTS_HEADER + contract(),
            None,
            "accounts",
            "It looks like a contracts file.",
        ),
        (
            ACCOUNTS_HEADER + account(),
            ACCOUNTS_HEADER + account(),
            "contracts",
            "It looks like a accounts file.",
        ),
    ],
)
def test_a_bad_upload_is_refused_at_once_with_the_reason(
    client, ops_lead, published, accounts, contracts, field, why
):
    client.force_login(ops_lead)
    response = upload(client, accounts, contracts)
    assert response.status_code == 400
    assert why in response.content.decode()
    assert list(response.context["form"].errors) == [field]
    assert (CrmImport.objects.count(), published) == (0, [])


def test_a_file_larger_than_the_limit_is_refused_without_being_read(
    client, ops_lead, published, monkeypatch
):
    monkeypatch.setattr(importing, "MAX_FILE_BYTES", 1024 * 1024)
    monkeypatch.setattr("customers.admin_crm_import.MAX_FILE_BYTES", 1024 * 1024)
    client.force_login(ops_lead)
    response = upload(client, ACCOUNTS_HEADER + account() * 20_000)
    assert response.status_code == 400
    assert "The file is larger than 1 MB: split it, or run import_crm on the server." in (
        response.content.decode()
    )
    assert (CrmImport.objects.count(), published) == (0, [])


def test_an_upload_whose_person_may_no_longer_take_crm_records_fails_with_the_reason(
    client, ops_lead, published
):
    client.force_login(ops_lead)
    upload(client, ACCOUNTS_HEADER + account())
    record = CrmImport.objects.get()
    ops_lead.groups.clear()
    ops_lead.user_permissions.add(Permission.objects.get(codename="view_customer"))
    with acting_as("task:crm_import_run"):
        importing.crm_import_run(import_id=record.pk)
    record.refresh_from_db()
    assert record.status == "failed"
    assert record.error == (
        "Nothing imported. You may not do this: it needs the permission customers.link_crm_account"
    )
    assert Customer.objects.count() == 0


def test_every_value_from_the_files_is_escaped_on_the_pages(client, ops_lead, tmp_path):
    hostile = '<script>alert("x")</script>'
    with acting_as("command:import_crm"):
        record, _ = importing.crm_import_files(
            (
                f"{hostile}.csv",
                (
                    ACCOUNTS_HEADER
                    + account(crm_id="=HYPERLINK(x)", name="")
                    + account(crm_id="001S", name=hostile, manager="<b>@x")
                ).encode(),
            )
        )
    assert record.rejected == 2
    client.force_login(ops_lead)
    html = page(client, record)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;.csv" in html
    assert "account_manager_email: must be an email address" in html
    listing = client.get("/admin/customers/crmimport/").content.decode()
    assert "<script>" not in listing and "&lt;script&gt;" in listing

    notes = client.get(reverse("admin:customers_crmimport_notes", args=[record.pk]))
    assert notes["Content-Type"] == "text/csv; charset=utf-8"
    assert b"".join(notes.streaming_content).decode().splitlines() == [
        '"file","line","crm_id","what","message"',
        '"accounts","2","\'=HYPERLINK(x)","rejected","name: Field required"',
        '"accounts","3","001S","rejected","account_manager_email: must be an email address"',
    ]


def test_an_import_page_lists_what_it_could_not_list_by_number(client, ops_lead, monkeypatch):
    monkeypatch.setattr(importing, "NOTES_KEPT", 2)
    with acting_as("command:import_crm"):
        record, _ = importing.crm_import_files(
            (
                "a.csv",
                (
                    ACCOUNTS_HEADER + "".join(account(crm_id=f"0{n}", name="") for n in range(5))
                ).encode(),
            )
        )
    client.force_login(ops_lead)
    html = page(client, record)
    assert html.count('<tr data-line="') == 2
    assert "and 3 more rows: import_crm prints every one." in html


def test_the_sweep_hands_a_lost_upload_to_the_workers_and_fails_one_lost_too_often(
    client, ops_lead, published
):
    client.force_login(ops_lead)
    with time_machine.travel(T0, tick=False):
        upload(client, ACCOUNTS_HEADER + account())  # its publish lost: broker down
        upload(client, ACCOUNTS_HEADER + account(crm_id="001B", tenant_id="b-1"))
        upload(client, ACCOUNTS_HEADER + account(crm_id="001C", tenant_id="c-1"))
        lost, dead, doomed = CrmImport.objects.order_by("pk")
        # Two started by a worker that died (one of them at its third attempt).
        with acting_as("task:crm_import_run"):
            for record, attempts in ((dead, 1), (doomed, 3)):
                record.status, record.attempts = "running", attempts
                record.save()
    published.clear()

    with time_machine.travel(T0 + dt.timedelta(seconds=30), tick=False):
        assert importing.crm_imports_sweep() == []  # a worker may still start them
    with (
        time_machine.travel(T0 + dt.timedelta(minutes=11), tick=False),
        acting_as("task:crm_imports_sweep"),
    ):
        due = importing.crm_imports_sweep()
    assert sorted(due) == [lost.pk, dead.pk]
    assert sorted(published) == [
        ("customers.crm_import_run", lost.pk),
        ("customers.crm_import_run", dead.pk),
    ]
    doomed.refresh_from_db()
    assert (doomed.status, doomed.error) == (
        "failed",
        "Its worker was lost 3 times; the rows taken before are kept. Upload the files again "
        "to take the rest.",
    )
    dead.refresh_from_db()
    assert (dead.status, dead.history.latest().history_change_reason) == (
        "queued",
        "its worker was lost: queued again",
    )
    with acting_as("task:crm_import_run"):
        importing.crm_import_run(import_id=dead.pk)
    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == ("succeeded", 2)
