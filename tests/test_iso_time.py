"""The fast ISO 8601 path agrees with Polars' parser, or steps aside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rta.flows.iso_time import parse_iso8601

pytestmark = pytest.mark.core

# hypothesis takes naive bounds and attaches the time zone itself.
moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC))  # noqa: DTZ001
offsets = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
styles = st.sampled_from(["js", "python", "seconds", "space"])


def render(moment: datetime, tz: timezone, style: str) -> str:
    local = moment.astimezone(tz)
    if style == "js":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if style == "python":
        return local.isoformat()
    if style == "seconds":
        return local.replace(microsecond=0).isoformat()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@given(st.lists(st.tuples(moments, offsets), min_size=1, max_size=50), styles)
def test_agrees_with_polars(values, style):
    texts = pl.Series("t", [render(m, tz, style) for m, tz in values])
    fast = parse_iso8601(texts)
    slow = texts.str.to_datetime(time_unit="ms", time_zone="UTC", strict=False)
    assert fast is not None and fast.equals(slow)


@pytest.mark.parametrize(
    "text",
    ["2026-02-30T10:00:00Z", "2026-13-01T00:00:00Z", "2026-11-28T24:00:00Z", "2026-11-28T10:00:00+0530", "yesterday", "2026-11-28"],
)
def test_steps_aside_for_what_it_does_not_know(text):
    assert parse_iso8601(pl.Series([text])) is None


def test_mixed_layouts_in_one_column():
    texts = pl.Series(["2026-11-28T10:00:00Z", "2026-11-28T10:00:00.250+01:00", "2026-11-28T10:00:00.5Z"])
    assert parse_iso8601(texts).to_list() == texts.str.to_datetime(time_unit="ms", time_zone="UTC").to_list()
