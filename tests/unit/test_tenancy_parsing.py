"""Input parsing of the tenancy commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.errors import UserError
from workers.tenancy import parse_expiry, slugify

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "delta"), [("30d", timedelta(days=30)),
                                              ("12h", timedelta(hours=12)),
                                              ("45m", timedelta(minutes=45))])
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_expiry(text, NOW) == NOW + delta


def test_iso_timestamps_and_none() -> None:
    assert parse_expiry("2027-01-01T00:00:00", NOW) == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_expiry(None) is None
    with pytest.raises(UserError, match="neither a duration"):
        parse_expiry("next tuesday", NOW)


def test_slugify() -> None:
    assert slugify("Plaza 7 (North)") == "plaza-7-north"
    with pytest.raises(UserError, match="cannot make a slug"):
        slugify("!!")


@given(st.text(min_size=1, max_size=80))
def test_slugify_output_is_always_a_valid_slug_or_a_user_error(text: str) -> None:
    try:
        slug = slugify(text)
    except UserError:
        return
    assert 2 <= len(slug) <= 63 and slug[0].isalnum()
    assert all(c.isascii() and (c.isalnum() or c == "-") for c in slug)
