"""The flow benchmark runs end to end on a small input, and every peer stores the same events."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.flow, pytest.mark.slow]

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("metrics", ["shop", "counts"])
def test_flow_bench_prints_every_peer_and_mode_with_equal_stored_events(metrics: str):
    cmd = [sys.executable, str(BENCH / "flow.py"), "--events", "20000", "--textbook-events", "2000", "--settle", "0"]
    cmd += ["--metrics", str(BENCH / "counts.py")] if metrics == "counts" else []
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {}
    for line in out.stdout.splitlines():
        if line.startswith("rollups"):
            mode, rest = line[:16].strip(), line[16:].split()
            rows[(mode, rest[0])] = rest
    assert set(rows) == {(m, p) for m in ("rollups only", "rollups + raw") for p in ("rta", "textbook", "clickhouse")}
    for mode in ("rollups only", "rollups + raw"):
        rta, native = rows[(mode, "rta")], rows[(mode, "clickhouse")]
        assert rta[-1] == native[-1] and int(rta[-1].replace(",", "")) > 10_000  # the same events in both stores


RAW_QUESTIONS = {
    "24h purchases by prop.plan",
    "24h purchases by country (declared)",
    "24h purchases by plan",
    "7d purchases by person.plan",
}


def test_query_bench_times_the_raw_events_questions_beside_their_peers():
    cmd = [sys.executable, str(BENCH / "query.py"), "--days", "1", "--events-per-day", "100000", "--users", "5000"]
    cmd += ["--runs", "2", "--raw-runs", "2", "--connections", ""]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-2000:]  # the bench exits when an rta answer differs from the peer's
    table = out.stdout.split("Queries that need raw events", 1)[1].splitlines()
    rows = [(line[:38].strip(), line[38:80].strip()) for line in table if line[:1].isdigit()]
    assert RAW_QUESTIONS <= {q for q, _ in rows}, table
    fallback = "rta: raw-events fallback (ws.query)"  # the planner answers both (no stand-in)
    assert ("24h purchases by prop.plan", fallback) in rows and ("7d purchases by person.plan", fallback) in rows, table
    assert ("24h purchases by prop.plan", "rta: ad-hoc builder (props map)") in rows
    assert {how for q, how in rows if q.startswith("24h purchases by plan") or q.startswith("7d purchases by users")} == {
        "ClickHouse: MergeTree, plan a column",
        "ClickHouse: MergeTree JOIN users",
    }
    assert "raw events: 100,000 in the last 24 h, 100,000/day in the 6 days before" in out.stdout
    assert any(line.startswith("goal: 24h by an undeclared property") for line in table)


def test_freshness_bench_probes_rta_and_the_clickhouse_peer(tmp_path: Path):
    plot = tmp_path / "freshness.png"
    cmd = [sys.executable, str(BENCH / "freshness.py"), "--quick", "--systems", "rta,clickhouse", "--plot", str(plot)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("system "))
    rows = {line.split()[0]: line.split() for line in lines[header + 1 :] if line.split() and line.split()[0] in ("rta", "clickhouse")}
    assert set(rows) == {"rta", "clickhouse"}, out.stdout
    for name, cells in rows.items():
        asked, sent, stored = (int(c.replace(",", "")) for c in cells[1:4])
        p50, p99 = (float("inf") if c == "lost" else float(c) for c in (cells[6], cells[8]))
        probes, lost = int(cells[12]), int(cells[13])
        assert asked == 1000 and sent > 0 and stored > 0, (name, cells)
        assert 0 < p50 <= p99 and probes > lost, (name, cells)  # probes counted, each later than its 200
    assert "machine: " in out.stdout and "goal (p50 <= 1 s" in out.stdout
    assert plot.stat().st_size > 1000
