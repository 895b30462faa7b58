"""References: short, readable aloud, and never shared by two messages."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bot.models import reference_for

SHAPE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")  # Crockford: no I L O U


def test_references_are_unique_over_the_first_hundred_thousand_messages() -> None:
    refs = {reference_for(i) for i in range(1, 100_001)}
    assert len(refs) == 100_000


def test_consecutive_messages_do_not_get_consecutive_references() -> None:
    assert reference_for(1)[:4] != reference_for(2)[:4]


@given(st.integers(min_value=1, max_value=2**40 - 1))
def test_every_reference_has_the_readable_shape(item_id: int) -> None:
    assert SHAPE.match(reference_for(item_id))
