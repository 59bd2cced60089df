"""Property: for any events, order, batching, lateness and replays, rollups equal the oracle."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rta.flows.runner import run_flow
from rta.flows.sources import SourceBatch
from rta.testing import BatchSource
from tests.flowcheck import assert_matches_oracle

pytestmark = [pytest.mark.flow, pytest.mark.store]
NOW = datetime.now(UTC).replace(second=30, microsecond=0)

event = st.fixed_dictionaries(
    {
        # Up to three days late, beyond the 1-minute and within the 7-day retention.
        "seconds_ago": st.integers(min_value=0, max_value=3 * 86_400),
        "event": st.sampled_from(["page_view", "purchase", "click"]),
        "country": st.sampled_from(["US", "DE", "", "BR"]),
        "device": st.sampled_from(["mobile", "desktop"]),
        "campaign": st.sampled_from(["(none)", "google_01"]),
        "user_id": st.sampled_from([f"u{i}" for i in range(6)] + [None]),
        "revenue": st.one_of(st.none(), st.floats(min_value=0, max_value=1e4, allow_nan=False).map(lambda x: round(x, 2))),
        "load_ms": st.one_of(st.none(), st.integers(min_value=1, max_value=5_000).map(float)),
    }
)


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [NOW - timedelta(seconds=r["seconds_ago"]) for r in rows],
            **{k: [r[k] for r in rows] for k in ("event", "country", "device", "campaign", "user_id")},
            "path": ["/"] * len(rows),
            "revenue": pl.Series([r["revenue"] for r in rows], dtype=pl.Float64),
            "load_ms": pl.Series([r["load_ms"] for r in rows], dtype=pl.Float64),
        },
        schema_overrides={"timestamp": pl.Datetime("ms", "UTC")},
    )


def _clear(client) -> None:
    tables = client.query("SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree'").result_rows
    for (name,) in tables:
        client.command(f"TRUNCATE TABLE `{name}`")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(event, min_size=1, max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
    flushes=st.lists(st.booleans(), min_size=7, max_size=7),
    order=st.randoms(use_true_random=False),
    crash=st.none() | st.tuples(st.integers(min_value=0, max_value=10), st.integers(min_value=0, max_value=10)),
)
def test_rollups_equal_oracle_for_any_batching(shop, client, rows, cuts, flushes, order, crash):
    _clear(client)
    order.shuffle(rows)
    frame = _frame(rows)
    bounds = sorted({0, frame.height, *(c for c in cuts if c < frame.height)})
    run = uuid.uuid4().hex
    spans = list(itertools.pairwise(bounds))
    batches = [SourceBatch(f"{run}:{i}", "events", frame.slice(a, b - a), "p", flushes[i]) for i, (a, b) in enumerate(spans)]
    # Partials accumulate until a batch marked flush; the last group ends with the input.
    # A crash after group boundary `end`, then a restart from an earlier snapshot at `start`,
    # replays batches[start:end] with the same keys and the same groups: it must add nothing.
    boundaries = [0] + [i + 1 for i, b in enumerate(batches) if b.flush]
    sequence = batches
    if crash is not None and len(boundaries) > 1:
        end = boundaries[1 + crash[0] % (len(boundaries) - 1)]
        earlier = [b for b in boundaries if b < end]
        start = earlier[crash[1] % len(earlier)]
        sequence = batches[:end] + batches[start:]
    run_flow(shop, BatchSource(sequence), client, clock=lambda: NOW)
    assert_matches_oracle(client, shop, frame, NOW)


def test_replayed_multi_batch_flush_groups_add_nothing(shop, client):
    """Two groups of three batches each, then a restart from the first snapshot replays both."""
    rows = [
        {"seconds_ago": 60 * i + 7 * 3600 * (i % 3), "event": ["page_view", "purchase", "click"][i % 3], "country": "US",
         "device": "mobile", "campaign": "(none)", "user_id": f"u{i % 4}", "revenue": float(i), "load_ms": 100.0 + i}
        for i in range(30)
    ]  # fmt: skip
    frame = _frame(rows)
    run = uuid.uuid4().hex
    batches = [SourceBatch(f"{run}:{i}", "events", frame.slice(5 * i, 5), "p", i in (2, 5)) for i in range(6)]
    run_flow(shop, BatchSource(batches + batches), client, clock=lambda: NOW)
    assert_matches_oracle(client, shop, frame, NOW)
