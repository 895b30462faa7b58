"""References: short, readable aloud, random; and the old ones, derived from the row id."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bot.models import new_reference, reference_for

SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")  # Crockford: no I L O U


def test_new_references_have_the_readable_shape_and_rarely_repeat() -> None:
    refs = [new_reference() for _ in range(10_000)]
    assert all(SHAPE.match(r) for r in refs)
    # 40 random bits: a repeat among 10,000 has a chance of about 1 in 22,000. The store
    # checks every one against its unique index all the same (tests/store).
    assert len(set(refs)) >= 9_999


def test_old_references_are_unique_over_the_first_hundred_thousand_messages() -> None:
    refs = {reference_for(i) for i in range(1, 100_001)}
    assert len(refs) == 100_000


def test_consecutive_messages_did_not_get_consecutive_old_references() -> None:
    assert reference_for(1)[:4] != reference_for(2)[:4]


@given(st.integers(min_value=1, max_value=2**40 - 1))
def test_every_old_reference_has_the_readable_shape(item_id: int) -> None:
    assert SHAPE.match(reference_for(item_id))
