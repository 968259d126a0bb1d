"""``import_crm ACCOUNTS.csv [CONTRACTS.csv]`` (customers.crm_import): the CRM's exports
taken by the webhook's rules, bad rows rejected by line with the good ones kept, exit 1
when a row was rejected; idempotent, ordered by updated_at, attributed
``command:import_crm``; a contract it activates gets its onboarding checklist."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from customers import crm_import as importing
from customers.crm import CrmAccount, CrmContract, account_upsert, contract_upsert
from customers.models import Contract, CrmImport, Customer
from onboarding import signals
from onboarding import tasks as onboarding_tasks
from onboarding.models import Checklist
from tests import builders
from tests.customers.crm_files import (
    ACCOUNT,
    ACCOUNTS_HEADER,
    CONTRACT,
    CONTRACTS_HEADER,
    account,
    contract,
    import_crm,
)

pytestmark = pytest.mark.django_db

ACTOR = "command:import_crm"


@pytest.fixture
def enqueued(monkeypatch):
    """What the contracts' writes ask the onboarding worker to do (onboarding.signals)."""
    calls = []
    monkeypatch.setattr(signals, "publish_after_commit", lambda *args: calls.append(args))
    return calls


def history(record) -> list[tuple[str, str, str]]:
    return [
        (row.history_type, row.history_actor, row.history_change_reason)
        for row in record.history.order_by("history_id")
    ]


def history_count() -> int:
    return Customer.history.count() + Contract.history.count()


def test_good_rows_are_taken_and_bad_ones_rejected_by_line_with_exit_status_1(tmp_path, manager):
    accounts = (
        ACCOUNTS_HEADER
        + account()
        + account(crm_id="001Dn00000Glob", name="", tenant_id="globex-1")
        + account(crm_id="001Dn00000Init", tenant_id="initech-1", status="zombie")
        + account(crm_id="001Dn00000Hool", name="Hooli", tenant_id="", manager="gavin@hooli.com")
    )
    contracts = (
        CONTRACTS_HEADER
        + contract()
        + contract(crm_id="800Dn00000C43", seats="-1")
        + contract(crm_id="800Dn00000C44", account_id="001Dn00000Glob")
        + contract(crm_id="800Dn00000C45", account_id="001Dn00000Nope")
        + contract(crm_id="800Dn00000C46", account_id="001Dn00000Hool", end="2026-01-01")
        + contract(crm_id="800Dn00000C47", account_id="001Dn00000Hool", status="draft")
    )
    status, out, err = import_crm(tmp_path, accounts, contracts)

    assert status == 1
    assert out == (
        "import_crm: accounts: 2 created, 0 changed, 0 unchanged, 0 stale, 2 rejected; "
        "contracts: 2 created, 0 changed, 0 unchanged, 0 stale, 4 rejected\n"
    )
    assert err.splitlines() == [
        "accounts line 3 (001Dn00000Glob): name: Field required",
        "accounts line 4 (001Dn00000Init): status: Input should be 'onboarding', 'active' or "
        "'churned'",
        "contracts line 3 (800Dn00000C43): seats: Input should be greater than or equal to 0",
        "contracts line 4 (800Dn00000C44): CRM account 001Dn00000Glob is not in opsdesk: its "
        "row in the accounts file (line 3) was rejected",
        "contracts line 5 (800Dn00000C45): CRM account 001Dn00000Nope is neither in opsdesk nor "
        "in the accounts file: import the account with its contracts",
        "contracts line 6 (800Dn00000C46): end_date must not be before start_date",
        "accounts line 5 (001Dn00000Hool): warning: account manager gavin@hooli.com matches no "
        "active staff member: the account has no account manager",
        "CommandError: 6 row(s) rejected; see above.",
    ]
    acme = Customer.objects.get(crm_id=ACCOUNT)
    assert (acme.name, acme.external_id, acme.account_manager, acme.status) == (
        "Acme Corp",
        "acme-7f3a",
        manager,
        "active",
    )
    assert acme.crm_updated_at == dt.datetime(2026, 11, 21, 9, 29, 41, tzinfo=dt.UTC)
    hooli = Customer.objects.get(crm_id="001Dn00000Hool")
    assert (hooli.external_id, hooli.account_manager) == ("", None)
    assert sorted(Customer.objects.values_list("crm_id", flat=True)) == [
        ACCOUNT,
        "001Dn00000Hool",
    ]
    taken = Contract.objects.get(crm_id=CONTRACT)
    assert (
        taken.customer,
        taken.plan,
        taken.seats,
        taken.monthly_fee,
        taken.price_per_extra_seat,
        taken.currency,
        taken.start_date,
        taken.end_date,
        taken.status,
        taken.integrations,
    ) == (
        acme,
        "growth",
        50,
        Decimal("1200.00"),
        Decimal("25.00"),
        "EUR",
        dt.date(2026, 12, 1),
        dt.date(2027, 11, 30),
        "active",
        ["slack", "sso"],
    )
    assert sorted(Contract.objects.values_list("crm_id", flat=True)) == [
        CONTRACT,
        "800Dn00000C47",
    ]
    assert history(acme) == [
        ("+", ACTOR, "CRM account 001Dn00000Acme, as of 2026-11-21 09:29:41 UTC")
    ]
    assert history(taken) == [
        ("+", ACTOR, "CRM contract 800Dn00000C42 created, as of 2026-11-21 09:30:58 UTC")
    ]


def test_the_import_is_recorded_with_its_counts_and_rejected_lines(tmp_path, manager):
    import_crm(tmp_path, ACCOUNTS_HEADER + account() + account(crm_id="001B", name=""))
    record = CrmImport.objects.get()
    assert (
        record.accounts_file_name,
        record.contracts_file_name,
        record.started_by,
        record.status,
        record.progress,
        record.rejected,
        record.warnings,
        record.error,
    ) == ("accounts.csv", "", ACTOR, "rows_rejected", 100, 1, 0, "")
    assert record.counts == {
        "accounts": {"created": 1, "changed": 0, "unchanged": 0, "stale": 0, "rejected": 1}
    }
    assert record.notes == [
        {
            "file": "accounts",
            "line": 3,
            "crm_id": "001B",
            "rejected": True,
            "message": "name: Field required",
        }
    ]
    assert [(row.history_type, row.history_actor) for row in record.history.all()][-1] == (
        "+",
        ACTOR,
    )


def test_a_reimport_of_the_same_files_changes_nothing_and_writes_no_history(tmp_path, manager):
    accounts = ACCOUNTS_HEADER + account() + account(crm_id="001B", name="Beta", tenant_id="")
    contracts = CONTRACTS_HEADER + contract() + contract(crm_id="800B", account_id="001B")
    assert import_crm(tmp_path, accounts, contracts)[0] == 0
    before = history_count()
    stamps = sorted(Customer.objects.values_list("updated_at", flat=True)) + sorted(
        Contract.objects.values_list("updated_at", flat=True)
    )

    status, out, err = import_crm(tmp_path, accounts, contracts)

    assert (status, err) == (0, "")
    assert out == (
        "import_crm: accounts: 0 created, 0 changed, 2 unchanged, 0 stale, 0 rejected; "
        "contracts: 0 created, 0 changed, 2 unchanged, 0 stale, 0 rejected\n"
    )
    assert history_count() == before
    assert stamps == sorted(Customer.objects.values_list("updated_at", flat=True)) + sorted(
        Contract.objects.values_list("updated_at", flat=True)
    )


def test_a_changed_row_changes_its_record_with_history(tmp_path, manager):
    import_crm(tmp_path, ACCOUNTS_HEADER + account(), CONTRACTS_HEADER + contract())
    status, out, _ = import_crm(
        tmp_path,
        ACCOUNTS_HEADER + account(name="Acme Corporation", updated_at="2026-11-25T10:00:00Z"),
        CONTRACTS_HEADER + contract(seats="80", updated_at="2026-11-25T10:00:00Z"),
    )
    assert status == 0
    assert out == (
        "import_crm: accounts: 0 created, 1 changed, 0 unchanged, 0 stale, 0 rejected; "
        "contracts: 0 created, 1 changed, 0 unchanged, 0 stale, 0 rejected\n"
    )
    acme, taken = Customer.objects.get(), Contract.objects.get()
    assert (acme.name, taken.seats) == ("Acme Corporation", 80)
    assert history(acme)[-1] == (
        "~",
        ACTOR,
        "CRM account 001Dn00000Acme changed, as of 2026-11-25 10:00:00 UTC",
    )
    assert history(taken)[-1] == (
        "~",
        ACTOR,
        "CRM contract 800Dn00000C42 changed, as of 2026-11-25 10:00:00 UTC",
    )


def test_an_older_row_changes_nothing_and_is_a_warning(tmp_path, manager):
    newer = "2026-11-25T10:00:00Z"
    import_crm(
        tmp_path,
        ACCOUNTS_HEADER + account(name="Acme Corporation", updated_at=newer),
        CONTRACTS_HEADER + contract(seats="80", updated_at=newer),
    )
    before = history_count()

    status, out, err = import_crm(
        tmp_path, ACCOUNTS_HEADER + account(), CONTRACTS_HEADER + contract()
    )

    assert status == 0
    assert out == (
        "import_crm: accounts: 0 created, 0 changed, 0 unchanged, 1 stale, 0 rejected; "
        "contracts: 0 created, 0 changed, 0 unchanged, 1 stale, 0 rejected\n"
    )
    assert err.splitlines() == [
        "accounts line 2 (001Dn00000Acme): warning: account 001Dn00000Acme: this change "
        "(2026-11-21 09:29:41 UTC) is older than the one taken (2026-11-25 10:00:00 UTC); "
        "nothing changed",
        "contracts line 2 (800Dn00000C42): warning: contract 800Dn00000C42: this change "
        "(2026-11-21 09:30:58 UTC) is older than the one taken (2026-11-25 10:00:00 UTC); "
        "nothing changed",
    ]
    assert (Customer.objects.get().name, Contract.objects.get().seats) == ("Acme Corporation", 80)
    assert history_count() == before
    assert CrmImport.objects.latest("received_at").status == "succeeded"


def test_the_same_record_twice_in_a_file_is_taken_in_the_order_of_its_rows(tmp_path, manager):
    status, out, err = import_crm(
        tmp_path,
        ACCOUNTS_HEADER
        + account(name="Acme v1", updated_at="2026-11-21T09:00:00Z")
        + account(name="Acme v2", updated_at="2026-11-22T09:00:00Z")
        + account(name="Acme v0", updated_at="2026-11-20T09:00:00Z"),
    )
    assert status == 0
    assert out == ("import_crm: accounts: 1 created, 1 changed, 0 unchanged, 1 stale, 0 rejected\n")
    assert err.startswith("accounts line 4 (001Dn00000Acme): warning: account 001Dn00000Acme: ")
    assert Customer.objects.get().name == "Acme v2"
    assert [row[0] for row in history(Customer.objects.get())] == ["+", "~"]


def test_a_contract_of_an_account_opsdesk_has_is_taken_without_the_accounts_row(tmp_path, manager):
    import_crm(tmp_path, ACCOUNTS_HEADER + account())
    status, out, _ = import_crm(
        tmp_path,
        ACCOUNTS_HEADER,
        CONTRACTS_HEADER + contract() + contract(crm_id="800X", account_id="001Y"),
    )
    assert status == 1
    assert out.endswith("contracts: 1 created, 0 changed, 0 unchanged, 0 stale, 1 rejected\n")
    assert Contract.objects.get().customer.crm_id == ACCOUNT


def test_lines_are_numbered_as_a_spreadsheet_numbers_its_rows(tmp_path):
    accounts = (
        ACCOUNTS_HEADER
        + '001A,"Acme\nCorp",,,,2026-11-21T09:29:41Z\n'  # one row over two lines
        + "\n"  # an empty row
        + "001B,Beta,,,,yesterday\n"
        + "001C,Gamma,,,,2026-11-21T09:29:41Z,extra\n"
        + ",,,,,\n"  # an empty row a spreadsheet left
    )
    status, out, err = import_crm(tmp_path, accounts)
    assert status == 1
    assert out == "import_crm: accounts: 1 created, 0 changed, 0 unchanged, 0 stale, 2 rejected\n"
    assert err.splitlines()[:2] == [
        "accounts line 4 (001B): updated_at: must be an ISO 8601 date and time, "
        "e.g. 2026-11-21T09:30:00Z",
        "accounts line 5 (001C): 7 values where the header names 6 columns",
    ]
    assert Customer.objects.get().name == "Acme\nCorp"


def test_columns_in_any_order_the_optional_ones_left_out(tmp_path):
    status, out, err = import_crm(
        tmp_path,
        "updated_at, Name ,CRM_ID,notes\n2026-11-21T09:29:41Z,Acme Corp,001A,from sales\n",
    )
    assert status == 0
    assert out == "import_crm: accounts: 1 created, 0 changed, 0 unchanged, 0 stale, 0 rejected\n"
    assert err == (
        "accounts line 1: warning: columns ignored (not fields of the CRM's accounts): notes\n"
    )
    acme = Customer.objects.get()
    assert (acme.crm_id, acme.name, acme.external_id, acme.status) == (
        "001A",
        "Acme Corp",
        "",
        "onboarding",
    )


@pytest.mark.parametrize(
    ("accounts", "contracts", "why"),
    [
        (
            b"crm_id,name,updated_at\n001A,Caf\xe9,2026-11-21T09:29:41Z\n",
            None,
            "The accounts file is not UTF-8 text: export it from the CRM as CSV (UTF-8).",
        ),
        (
            b"",
            None,
            "The accounts file is empty: its first line names the columns crm_id, name, "
            "tenant_id, account_manager_email, status, updated_at, in any order (those not "
            "required may be left out).",
        ),
        (
            b"crm_id,updated_at\n001A,2026-11-21T09:29:41Z\n",
            None,
            "The accounts file's header lacks name: its first line names the columns crm_id, "
            "name, tenant_id, account_manager_email, status, updated_at, in any order (those "
            "not required may be left out).",
        ),
        (
            CONTRACTS_HEADER.encode(),
            None,
            "The accounts file's header lacks crm_id, name: its first line names the columns "
            "crm_id, name, tenant_id, account_manager_email, status, updated_at, in any order "
            "(those not required may be left out). It looks like a contracts file.",
        ),
        (
            (ACCOUNTS_HEADER + account()).encode(),
            b"crm_contract_id,crm_contract_id\n",
            "The contracts file's header names crm_contract_id more than once.",
        ),
        (
            (ACCOUNTS_HEADER + account()).encode(),
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
            "The contracts file is not CSV text (it holds NUL bytes): export it from the CRM "
            "as CSV (UTF-8).",
        ),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_and_nothing_is_taken(
    tmp_path, accounts, contracts, why
):
    status, out, err = import_crm(tmp_path, accounts, contracts)
    assert (status, out) == (1, "")
    assert err == f"CommandError: Nothing imported. {why}\n"
    assert Customer.objects.count() == 0
    record = CrmImport.objects.get()
    assert (record.status, record.error) == ("failed", f"Nothing imported. {why}")


def test_an_account_typed_in_opsdesk_is_linked_by_its_tenant_id_with_its_history(tmp_path, manager):
    typed = builders.customer(external_id="acme-7f3a", name="ACME (typed)")
    other = builders.customer(external_id="globex-1", crm_id="001Dn00000Glob")
    status, _, err = import_crm(
        tmp_path,
        ACCOUNTS_HEADER
        + account()
        + account(crm_id="001Dn00000Fake", name="Globex twin", tenant_id="globex-1"),
    )
    assert status == 1
    assert err.splitlines()[0] == (
        "accounts line 3 (001Dn00000Fake): tenant id globex-1 is Customer "
        f"{other.name.removeprefix('Customer ')}'s, which is CRM account 001Dn00000Glob, "
        "not 001Dn00000Fake"
    )
    typed.refresh_from_db()
    assert (typed.crm_id, typed.name) == (ACCOUNT, "Acme Corp")
    assert [row[:2] for row in history(typed)] == [("+", "test:builder"), ("~", ACTOR)]
    assert history(typed)[-1][2] == "linked to CRM account 001Dn00000Acme by its tenant id"


def test_a_tenant_id_taken_twice_in_one_file_goes_to_the_first_account(tmp_path):
    status, _, err = import_crm(
        tmp_path,
        ACCOUNTS_HEADER + account(crm_id="001A") + account(crm_id="001B", name="Twin"),
    )
    assert status == 1
    assert err.splitlines()[0] == (
        "accounts line 3 (001B): tenant id acme-7f3a is Acme Corp's, which is CRM account "
        "001A, not 001B"
    )
    assert list(Customer.objects.values_list("crm_id", "external_id")) == [("001A", "acme-7f3a")]


def rows_of(lines: list[str], schema) -> list:
    header = (ACCOUNTS_HEADER if schema is CrmAccount else CONTRACTS_HEADER).strip().split(",")
    rows = []
    for line in lines:
        values = dict(zip(header, line.strip().split(","), strict=True))
        values = {k: v.split() if k == "integrations" else v for k, v in values.items() if v}
        rows.append(schema.model_validate(values))
    return rows


def state() -> dict:
    """Every customer and contract and their history, without ids and clock times."""
    skip = {"id", "created_at", "updated_at", "history_id", "history_date", "customer"}

    def rows(model, key):
        return {
            getattr(obj, key): {
                f.attname: getattr(obj, f.attname)
                for f in model._meta.concrete_fields
                if f.name not in skip and f.attname != "customer_id"
            }
            | ({"customer": obj.customer.crm_id} if model is Contract else {})
            for obj in model.objects.all()
        }

    def past(model):
        return sorted(
            (
                row.crm_id,
                row.history_type,
                row.history_actor,
                row.history_change_reason,
                tuple(
                    (f.attname, getattr(row, f.attname))
                    for f in row._meta.concrete_fields
                    if f.name not in skip and f.attname not in {"customer_id", "history_user_id"}
                ),
            )
            for row in model.history.all()
        )

    return {
        "customers": rows(Customer, "crm_id"),
        "contracts": rows(Contract, "crm_id"),
        "customer_history": past(Customer),
        "contract_history": past(Contract),
    }


def test_the_batches_take_rows_exactly_as_account_upsert_and_contract_upsert_do(
    tmp_path, manager, other_manager
):
    """The import's batches against the webhook's functions, a row at a time, on the same
    records: the same records and the same history rows (actor, reason, values)."""
    with transaction.atomic():
        builders.customer(external_id="typed-1", name="Typed in opsdesk")
        builders.customer(external_id="held-1", crm_id="001Held", name="Held")
    first = [
        account(crm_id="001A", tenant_id="t-a"),
        account(crm_id="001B", name="Beta", tenant_id="", manager="bob@opsdesk.test"),
        account(crm_id="001C", name="Gamma", tenant_id="typed-1", status=""),
        account(crm_id="001D", name="Delta", tenant_id="held-1"),
        account(crm_id="001F", name="Phi", tenant_id="t-f"),
    ]
    second = [
        account(crm_id="001A", tenant_id="t-a"),  # unchanged
        account(crm_id="001B", name="Beta 2", tenant_id="t-b", updated_at="2026-11-25T10:00:00Z"),
        account(crm_id="001C", name="Old", tenant_id="typed-1", updated_at="2026-11-01T10:00:00Z"),
        account(crm_id="001E", name="Eps", tenant_id="t-e", manager="nobody@x.test"),
        account(crm_id="001F", name="Phi", tenant_id="t-f2", updated_at="2026-11-25T10:00:00Z"),
    ]
    contracts_first = [
        contract(crm_id="800A", account_id="001A"),
        contract(crm_id="800B", account_id="001B", status="draft", integrations=""),
    ]
    contracts_second = [
        contract(crm_id="800A", account_id="001A"),
        contract(crm_id="800B", account_id="001E", updated_at="2026-11-25T10:00:00Z"),
        contract(crm_id="800C", account_id="001C", end=""),
    ]
    files = [(first, contracts_first), (second, contracts_second)]

    outcomes, states = {}, {}
    for path in ("batches", "one at a time"):
        with transaction.atomic():
            taken = []
            for accounts, contracts in files:
                if path == "batches":
                    result = importing.crm_import(
                        ACCOUNTS_HEADER + "".join(accounts),
                        CONTRACTS_HEADER + "".join(contracts),
                    )
                    taken += [
                        (r.created, r.changed, r.unchanged, r.stale, len(r.rejected))
                        for r in result.files
                    ]
                    continue
                for rows, upsert in (
                    (rows_of(accounts, CrmAccount), account_upsert),
                    (rows_of(contracts, CrmContract), contract_upsert),
                ):
                    counts = dict.fromkeys(("created", "changed", "unchanged", "stale"), 0)
                    rejected = 0
                    for row in rows:
                        try:
                            counts[upsert(row, actor=ACTOR).outcome] += 1
                        except Exception:
                            rejected += 1
                    taken.append((*counts.values(), rejected))
            outcomes[path], states[path] = taken, state()
            transaction.set_rollback(True)

    assert (
        outcomes["batches"]
        == outcomes["one at a time"]
        == [
            (3, 1, 0, 0, 1),  # 001C linked by its tenant id; 001D's tenant is another's
            (2, 0, 0, 0, 0),
            (1, 2, 1, 1, 0),  # 001F's tenant id moves
            (1, 1, 1, 0, 0),
        ]
    )
    assert states["batches"] == states["one at a time"]


def test_a_contract_activated_by_the_import_gets_its_checklist(
    tmp_path, manager, agent, templates, enqueued
):
    import_crm(
        tmp_path,
        ACCOUNTS_HEADER + account(),
        CONTRACTS_HEADER + contract() + contract(crm_id="800D", status="draft"),
    )
    active = Contract.objects.get(crm_id=CONTRACT)
    assert enqueued == [("onboarding.checklist_generate", active.pk)]

    onboarding_tasks.checklist_generate(active.pk)  # what the worker then does
    checklist = Checklist.objects.get()
    assert checklist.contract == active
    assert sorted(checklist.tasks.values_list("title", "owner__username")) == [
        ("Configure SSO", "sam"),
        ("Kick-off call with Acme Corp", "alice"),
    ]


def test_a_reimport_that_activates_a_draft_or_changes_a_scope_follows_the_checklist(
    tmp_path, manager, enqueued
):
    import_crm(
        tmp_path,
        ACCOUNTS_HEADER + account(),
        CONTRACTS_HEADER + contract() + contract(crm_id="800D", status="draft"),
    )
    enqueued.clear()
    later = "2026-11-25T10:00:00Z"
    import_crm(
        tmp_path,
        ACCOUNTS_HEADER + account(),
        CONTRACTS_HEADER
        + contract(seats="120", updated_at=later)
        + contract(crm_id="800D", updated_at=later),
    )
    assert sorted(enqueued) == sorted(
        [
            ("onboarding.checklist_sync", Contract.objects.get(crm_id=CONTRACT).pk),
            ("onboarding.checklist_generate", Contract.objects.get(crm_id="800D").pk),
        ]
    )
    enqueued.clear()
    import_crm(  # the same again: nothing to follow
        tmp_path,
        ACCOUNTS_HEADER + account(),
        CONTRACTS_HEADER
        + contract(seats="120", updated_at=later)
        + contract(crm_id="800D", updated_at=later),
    )
    assert enqueued == []


def test_batches_of_a_large_file_commit_one_by_one_and_report_progress(monkeypatch):
    monkeypatch.setattr(importing, "BATCH", 3)
    seen = []
    result = importing.crm_import(
        ACCOUNTS_HEADER
        + "".join(account(crm_id=f"001A{n}", tenant_id=f"t-{n}") for n in range(7))
        + "001Bad,,,,,2026-11-21T09:29:41Z\n",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(3, 8), (6, 8), (8, 8)]
    assert (result.accounts.created, len(result.accounts.rejected)) == (7, 1)
    assert Customer.history.filter(history_actor=ACTOR, history_type="+").count() == 7


def test_a_batch_that_collides_with_a_record_written_meanwhile_is_taken_row_by_row(
    monkeypatch,
):
    """As if a webhook had committed tenant id t-1's customer after the batch looked the
    tenant ids up: the batch's insert fails on the unique tenant id, and its rows are taken
    one at a time, the colliding one rejected with the reason, the others kept."""
    webhooks = builders.customer(external_id="t-1", crm_id="001Web")
    monkeypatch.setattr(importing, "_tenants_held", lambda tenant_ids: set())
    result = importing.crm_import(
        ACCOUNTS_HEADER
        + account(crm_id="001A", tenant_id="t-0")
        + account(crm_id="001B", tenant_id="t-1")
    )
    assert result.accounts.created == 1
    assert [(n.line, n.crm_id, n.message) for n in result.accounts.rejected] == [
        (3, "001B", f"tenant id t-1 is {webhooks.name}'s, which is CRM account 001Web, not 001B")
    ]
    assert sorted(Customer.objects.values_list("crm_id", flat=True)) == ["001A", "001Web"]
