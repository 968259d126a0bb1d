"""The CRM import benchmark's files (``bench.crm_import``): the same for the same size, and
every row one the import takes (its warnings: the addresses nobody at opsdesk has)."""

import pytest

from bench.crm_import import MANAGERS, write_files
from customers import crm_import as importing
from tests.personas import staff_user

pytestmark = pytest.mark.django_db


def test_the_files_are_the_same_for_the_same_size(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = [path.read_bytes() for path in write_files(tmp_path / "a", 50)]
    again = [path.read_bytes() for path in write_files(tmp_path / "b", 50)]
    assert first == again
    assert [text.count(b"\n") for text in first] == [51, 101]  # with the header


def test_every_row_of_the_files_is_taken(tmp_path):
    for n in range(MANAGERS):
        staff_user(f"am{n:02d}")
    accounts, contracts = write_files(tmp_path, 300)
    result = importing.crm_import(accounts.read_text(), contracts.read_text())
    assert (result.accounts.created, result.contracts.created, result.rejected) == (300, 600, [])
    assert result.warnings  # a few accounts name someone who left
    assert {note.message.split(" matches ")[0].split("former-")[0] for note in result.warnings} == {
        "account manager "
    }
