import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from opsdesk.settings import envbool, envint, envlist

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("on", True), ("false", False), ("0", False)],
)
def test_envbool_reads_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("OPSDESK_FLAG", raw)
    assert envbool("OPSDESK_FLAG", not expected) is expected


def test_envbool_rejects_anything_else(monkeypatch):
    monkeypatch.setenv("OPSDESK_FLAG", "ture")
    with pytest.raises(ImproperlyConfigured, match="OPSDESK_FLAG must be true or false"):
        envbool("OPSDESK_FLAG", False)


def test_envint_rejects_a_non_number(monkeypatch):
    monkeypatch.setenv("OPSDESK_N", "25x")
    with pytest.raises(ImproperlyConfigured, match="OPSDESK_N must be an integer, got '25x'"):
        envint("OPSDESK_N", 1)


def test_envlist_drops_blanks(monkeypatch):
    monkeypatch.setenv("OPSDESK_HOSTS", " a.example ,, b.example ")
    assert envlist("OPSDESK_HOSTS", "") == ["a.example", "b.example"]


def test_debug_off_without_a_secret_key_refuses_to_start():
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY is required when DJANGO_DEBUG is false" in result.stderr
