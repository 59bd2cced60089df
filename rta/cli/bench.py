"""`rta bench`: run a benchmark of a source checkout."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rta.errors import RtaError

BENCHMARKS = ("flow", "query", "ingest", "freshness")


def bench(
    which: Annotated[
        str,
        typer.Argument(
            help="flow (throughput vs peers), query (latency, concurrency vs raw events), ingest (collect API vs peers) "
            "or freshness (seconds from the 200 to a query that counts the event, under steady load, vs ClickHouse-native)."
        ),
    ],
    args: Annotated[list[str] | None, typer.Argument(help="Options passed to the benchmark, e.g. -- --events 2000000.")] = None,
) -> None:
    """Run a benchmark from a source checkout's bench/ folder; it prints a table comparing rta with its peers."""
    import subprocess

    script = Path(__file__).resolve().parents[2] / "bench" / f"{which}.py"  # rta/cli/bench.py -> the checkout
    if which not in BENCHMARKS:
        raise RtaError(f"unknown benchmark {which!r}; valid benchmarks are: {', '.join(BENCHMARKS)}")
    if not script.is_file():
        raise RtaError(f"{script} not found: benchmarks run from a source checkout (git clone, then pip install -e .)")
    raise typer.Exit(subprocess.call([sys.executable, str(script), *(args or [])]))
