"""kit.text: counts stopped at a cap, as every page shows them."""

from kit.text import capped_text


def test_a_capped_count_reads_as_the_cap_and_a_plus_once_past_it():
    assert [capped_text(n, 999) for n in (0, 7, 999, 1000)] == ["0", "7", "999", "999+"]
    assert (capped_text(1234, 10_000), capped_text(10_001, 10_000)) == ("1,234", "10,000+")
