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
