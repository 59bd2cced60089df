"""The flow's rollups equal a brute-force Polars oracle, for any order, lateness and batching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from rta.flows.demo import Population, generate
from rta.flows.runner import run_flow
from rta.flows.sources import FileSource
from rta.testing import BatchSource, frame_batches
from tests.flowcheck import assert_matches_oracle

pytestmark = [pytest.mark.flow, pytest.mark.store]
NOW = datetime.now(UTC).replace(microsecond=0)


def shop_events(n: int, seed: int) -> pl.DataFrame:
    """Demo events over the last 3 days, shuffled, plus events beyond the lateness window and in the future."""
    rng = np.random.default_rng(seed)
    now_ms = int(NOW.timestamp() * 1000)
    recent = generate(Population(seed, users=5_000), n, now_ms - 3 * 86_400_000, now_ms, rng, f"s{seed}")
    too_old = generate(Population(seed, users=50), 25, now_ms - 40 * 86_400_000, now_ms - 35 * 86_400_000, rng, f"old{seed}")
    future = generate(Population(seed, users=50), 15, now_ms + 2 * 3_600_000, now_ms + 3 * 3_600_000, rng, f"fut{seed}")
    return pl.concat([recent, too_old, future]).sample(fraction=1.0, shuffle=True, seed=seed)


def stats_outcomes(client) -> dict[str, int]:
    rows = client.query("SELECT outcome, sum(events) FROM rta_ingest_stats GROUP BY outcome").result_rows
    return {k: int(v) for k, v in rows}


def expected_outcomes(events: pl.DataFrame) -> dict[str, int]:
    """Outcomes by the shop stream's window: 30 days late, 1 hour ahead."""
    ts = events["timestamp"]
    late = int((ts < NOW - timedelta(days=30)).sum())
    future = int((ts > NOW + timedelta(hours=1)).sum())
    assert late and future  # the data exercises both
    return {"accepted": events.height - late - future, "late": late, "future": future}


def test_json_lines_in_many_batches_match_oracle(shop, client, tmp_path):
    events = shop_events(20_000, seed=1)
    path = tmp_path / "events.jsonl"
    events.write_ndjson(path)
    source = FileSource([path], shop.stream("events"), chunk_bytes=128 * 1024, group_bytes=256 * 1024)
    stats = run_flow(shop, source, client, clock=lambda: NOW)
    batches = path.stat().st_size // (128 * 1024)
    assert stats.inserts >= 4 * (batches // 2)  # 4 tables (outcomes, raw, 2 rollups), a flush every 2 batches
    compared = assert_matches_oracle(client, shop, events, NOW)
    assert compared > 50_000
    assert stats_outcomes(client) == expected_outcomes(events)


def test_loading_the_same_file_twice_changes_nothing(shop, client, tmp_path):
    events = shop_events(5_000, seed=2)
    path = tmp_path / "events.jsonl"
    events.write_ndjson(path)
    run_flow(shop, FileSource([path], shop.stream("events"), chunk_bytes=64 * 1024), client, clock=lambda: NOW)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(path.read_bytes())
    again = run_flow(shop, FileSource([path, copy], shop.stream("events"), chunk_bytes=64 * 1024), client, clock=lambda: NOW)
    assert again.events_in == 2 * 5_040  # read again, in full ...
    assert_matches_oracle(client, shop, events, NOW)  # ... and counted once
    assert stats_outcomes(client) == expected_outcomes(events)


def test_parquet_and_frames_match_oracle(shop, client, tmp_path):
    events = shop_events(6_000, seed=3)
    path = tmp_path / "events.parquet"
    events.head(3_000).write_parquet(path, row_group_size=500)
    run_flow(shop, FileSource([path], shop.stream("events")), client, clock=lambda: NOW)
    frames = [events.slice(i, 250) for i in range(3_000, events.height, 250)]
    run_flow(shop, BatchSource(frame_batches("events", frames)), client, clock=lambda: NOW)
    assert_matches_oracle(client, shop, events, NOW)


def test_bad_lines_are_tallied_and_neighbours_kept(shop, client, tmp_path):
    events = shop_events(1_000, seed=4).filter(pl.col("timestamp") <= NOW).filter(pl.col("timestamp") >= NOW - timedelta(days=3))
    lines = events.write_ndjson().splitlines()
    bad = ["not json", '{"event": "purchase", "timestamp": "yesterday"}', '{"event": "x", "properties": {"revenue": "lots"}}', "[1,2]"]
    mixed = lines[:300] + bad[:2] + lines[300:700] + bad[2:] + lines[700:]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(mixed) + "\n")
    stats = run_flow(shop, FileSource([path], shop.stream("events"), chunk_bytes=64 * 1024), client, clock=lambda: NOW)
    assert stats.outcomes["invalid"] == 4 and stats.outcomes["accepted"] == events.height
    assert any("lots" in e for e in stats.errors)
    # A bad line is named by its file and line, counted across the chunks the file is read in.
    assert any(e.startswith("mixed.jsonl line 301: ") and "not json" in e for e in stats.errors), stats.errors
    assert any(e.startswith("mixed.jsonl line 704: ") and "[1,2]" in e for e in stats.errors), stats.errors
    assert_matches_oracle(client, shop, events, NOW)


@pytest.mark.slow
def test_large_shuffled_late_input_matches_oracle(shop, client, tmp_path):
    """300K events, 3 days, shuffled, hours-late tail, in ~4 MB flushes: every bucket exact."""
    events = shop_events(300_000, seed=5)
    path = tmp_path / "events.jsonl"
    events.write_ndjson(path)
    source = FileSource([path], shop.stream("events"), chunk_bytes=4 * 1024 * 1024, group_bytes=16 * 1024 * 1024)
    stats = run_flow(shop, source, client, clock=lambda: NOW)
    chunks = path.stat().st_size // (4 * 1024 * 1024)
    assert stats.inserts >= 4 * (chunks // 4)  # 4 tables, a flush every 4 chunks
    assert_matches_oracle(client, shop, events, NOW)
    assert stats_outcomes(client) == expected_outcomes(events)
