"""Redemption codes: what a person reads off an email and types into the product."""

from __future__ import annotations

import random
import secrets

# Crockford-style: no 0/O, 1/I/L (misread when typed from a screen or paper) and no U
# (keeps accidental words out). 30 symbols, 12 of them: about 59 bits per code.
REDEMPTION_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REDEMPTION_CODE_GROUPS = 3
REDEMPTION_CODE_GROUP_LENGTH = 4


def redemption_code_generate(rng: random.Random | None = None) -> str:
    """A code like ``K7QP-4XMD-9RTW``.

    Without ``rng`` the code comes from ``secrets`` and cannot be guessed; with a seeded
    ``random.Random`` it is reproducible (demo data and tests only: never for real codes).
    """
    choose = secrets.choice if rng is None else rng.choice
    return "-".join(
        "".join(choose(REDEMPTION_CODE_ALPHABET) for _ in range(REDEMPTION_CODE_GROUP_LENGTH))
        for _ in range(REDEMPTION_CODE_GROUPS)
    )


def redemption_code_bare(typed: str) -> str:
    """A code as typed (any case, with or without its dashes or spaces) reduced to what
    identifies it: upper case, without dashes or spaces. ``K7qp 4xmd-9rtw`` and
    ``K7QP-4XMD-9RTW`` are both ``K7QP4XMD9RTW`` (the index ``entitlement_code_bare_trgm``
    holds every code so)."""
    return "".join(char for char in typed.upper() if char not in "- ")
