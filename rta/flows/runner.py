"""Run a plan's dataflow in this process, reporting progress while it runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from bytewax.inputs import Source
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import cluster_main, run_main
from clickhouse_connect.driver.client import Client

from rta.compiler.people_ddl import has_people
from rta.compiler.plan import Plan
from rta.flows.dataflow import Clock, build_dataflow, utcnow
from rta.flows.people import Erasures
from rta.flows.sink import StoreSink
from rta.flows.sources import SourceBatch
from rta.flows.stats import FlowStats
from rta.store.client import sibling
from rta.store.erased import InsertCheck


def run_flow(
    plan: Plan,
    source: Source[SourceBatch] | Sequence[Source[SourceBatch]],
    client: Client | None,
    *,
    stats: FlowStats | None = None,
    clock: Clock = utcnow,
    report: Callable[[FlowStats], None] | None = None,
    every: float = 1.0,
    recovery: Path | None = None,
    cluster: tuple[list[str], int] | None = None,
) -> FlowStats:
    """Run until the sources end; ``report`` is called about every ``every`` seconds and at the end.

    With ``recovery`` (a folder), Bytewax snapshots source offsets and pending partials there
    every second and a restart resumes from them; replays deduplicate in the store. With
    ``cluster`` (addresses, this process's index) the flow is one process of a Bytewax
    cluster; process 0 owns the store (``client``), the others pass ``client=None``.
    """
    stats = stats or FlowStats()

    def connect(writer: int) -> Client:  # writers after the first get their own session when they can
        return (sibling(client) if writer else None) or client  # type: ignore[arg-type,return-value]

    # Every insert of people's ids is checked against the erasures right before it is written (rta/store/erased.py).
    check = InsertCheck(plan) if has_people(plan.streams) else None
    sink = StoreSink(connect, stats, local=client is not None, durable=recovery is not None, erasures=check)
    # Erased people's events are dropped if the source replays them; read on a session of its own.
    reader = (sibling(client) or client) if client is not None and has_people(plan.streams) else None
    flow = build_dataflow(plan, source, sink, stats, clock=clock, erasures=Erasures(reader))
    config = None
    if recovery is not None:
        if not recovery.is_dir():
            recovery.mkdir(parents=True)
            init_db_dir(recovery, 1)
        config = RecoveryConfig(recovery)
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every):
            report(stats)  # type: ignore[misc]

    ticker = threading.Thread(target=tick, daemon=True) if report else None
    if ticker:
        ticker.start()
    try:
        if cluster is None:
            run_main(flow, epoch_interval=timedelta(seconds=1), recovery_config=config)
        else:
            cluster_main(flow, cluster[0], cluster[1], epoch_interval=timedelta(seconds=1), recovery_config=config)
    finally:
        if reader is not None and reader is not client:
            reader.close()
        done.set()
        if ticker:
            ticker.join()
    return stats


def progress_line(stats: FlowStats, previous: dict[str, float]) -> str:
    """One line of rates since the previous call: events in/written per second, rows, rejects, lag."""
    now = time.monotonic()
    elapsed = max(now - previous.get("t", stats.started), 1e-9)
    rate_in = (stats.events_in - previous.get("in", 0)) / elapsed
    rate_out = (stats.events_written - previous.get("out", 0)) / elapsed
    previous.update(t=now, **{"in": stats.events_in, "out": stats.events_written})
    lag = "n/a"
    if stats.newest_event_ms is not None:
        lag = f"{max(time.time() - stats.newest_event_ms / 1000, 0):.0f}s"
    held = stats.outcomes.get("quarantined", 0)
    aside = f" | quarantined {held:,} (see .rta/log/*/p*/quarantine.jsonl)" if held else ""
    return (
        f"in {rate_in:>11,.0f} ev/s | written {rate_out:>11,.0f} ev/s | rows stored {stats.rows_written:>12,} "
        f"| rejected {stats.rejected:>8,} | newest event lag {lag}{aside}"
    )


def summary(stats: FlowStats) -> str:
    """What a run did, for the end of `rta run` and `rta load`."""
    elapsed = time.monotonic() - stats.started
    outcomes = ", ".join(f"{k} {v:,}" for k, v in sorted(stats.outcomes.items()) if v) or "none"
    lines = [
        f"events read {stats.events_in:,} in {elapsed:.1f}s ({stats.events_in / max(elapsed, 1e-9):,.0f} ev/s)",
        f"outcomes: {outcomes}",
        f"written: {stats.events_written:,} events as {stats.rows_written:,} rows in {stats.inserts:,} inserts",
    ]
    lines += [f"rejected example: {e}" for e in stats.errors[:5]]
    return "\n".join(lines)
