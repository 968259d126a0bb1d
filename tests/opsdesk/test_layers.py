"""The layers of docs/architecture.md hold, and the contract catches an import that breaks
them: lint-imports runs in ``make test`` on the tree, and here on a copy with one wrong
import added, so a contract that stopped checking anything would fail this test."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = ["kit", "audit", "customers", "onboarding", "support", "billing", "opsdesk", "devstack"]


def _copy_tree(target: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            target / package,
            ignore=shutil.ignore_patterns("__pycache__", "static", "migrations"),
        )
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_the_tree_keeps_its_layers():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout
    assert "Contracts: 2 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "broken"),
    [
        # The core app reaching up into the project (what customers/admin.py once did).
        (
            "customers/models.py",
            "import opsdesk.celery",
            "customers is not allowed to import opsdesk",
        ),
        # One middle app importing its sibling (onboarding once published via support).
        (
            "onboarding/models.py",
            "import support.models",
            "onboarding is not allowed to import support",
        ),
        # The bottom layer importing an app.
        ("kit/text.py", "import audit.models", "kit is not allowed to import audit"),
        (
            "devstack/embedded.py",
            "import customers.models",
            "devstack is not allowed to import customers",
        ),
    ],
)
def test_a_wrong_import_breaks_the_contract(tmp_path, module, wrong_import, broken):
    _copy_tree(tmp_path)
    path = tmp_path / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # the wrong import\n")

    result = _lint(tmp_path)

    assert result.returncode == 1
    assert broken in result.stdout
    assert "1 broken" in result.stdout
