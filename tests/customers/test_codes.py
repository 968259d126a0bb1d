"""Redemption codes: typeable, unambiguous, unguessable unless a seeded generator is given."""

import random
import re

from customers import codes
from customers.codes import REDEMPTION_CODE_ALPHABET, redemption_code_generate

CODE = re.compile(r"^[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}(-[23456789ABCDEFGHJKMNPQRSTVWXYZ]{4}){2}$")


def test_a_code_is_three_groups_of_four():
    code = redemption_code_generate()
    assert CODE.match(code), code
    assert len(code) == 14


def test_the_alphabet_leaves_out_every_ambiguous_character():
    assert len(REDEMPTION_CODE_ALPHABET) == 30
    assert len(set(REDEMPTION_CODE_ALPHABET)) == 30
    assert set(REDEMPTION_CODE_ALPHABET).isdisjoint("0O1ILU")


def test_codes_use_only_the_alphabet_and_all_of_it():
    seen = set()
    for _ in range(2_000):
        seen.update(redemption_code_generate().replace("-", ""))
    assert seen == set(REDEMPTION_CODE_ALPHABET)


def test_a_seeded_generator_gives_the_same_codes():
    first = [redemption_code_generate(random.Random(7)) for _ in range(3)]
    rng_a, rng_b = random.Random(7), random.Random(7)
    assert [redemption_code_generate(rng_a) for _ in range(5)] == [
        redemption_code_generate(rng_b) for _ in range(5)
    ]
    assert first == [first[0]] * 3
    assert first[0] == "C6EP-34WK-5DM3"


def test_different_seeds_give_different_codes():
    assert redemption_code_generate(random.Random(7)) != redemption_code_generate(random.Random(8))


def test_without_a_generator_the_code_comes_from_secrets(monkeypatch):
    monkeypatch.setattr(codes.secrets, "choice", lambda alphabet: alphabet[-1])
    assert redemption_code_generate() == "ZZZZ-ZZZZ-ZZZZ"


def test_without_a_generator_seeding_random_does_not_repeat_codes():
    random.seed(42)
    first = redemption_code_generate()
    random.seed(42)
    assert redemption_code_generate() != first


def test_ten_thousand_codes_do_not_repeat():
    assert len({redemption_code_generate() for _ in range(10_000)}) == 10_000
