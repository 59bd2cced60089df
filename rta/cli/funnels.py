"""`rta funnel NAME`: a declared funnel's steps, people, conversion and times, from raw events."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rta.cli.common import Format, ProjectOpt, print_frame


def funnel(
    name: Annotated[str, typer.Argument(help="The funnel's name (declared with funnel(...) in metrics/*.py).")],
    project: ProjectOpt = Path("."),
    last: Annotated[str, typer.Option(help="Time range back from now, e.g. 24h, 7d.")] = "7d",
    by: Annotated[
        list[str] | None,
        typer.Option(
            help="Break down by a dimension, prop.<property> or person.<trait>, read at step 1 (repeatable; default the funnel's)."
        ),
    ] = None,
    no_by: Annotated[bool, typer.Option("--no-by", help="No breakdown, even if the funnel declares one.")] = False,
    where: Annotated[
        list[str] | None, typer.Option(help="Filter the events (repeatable; all must hold), as in `rta query --where`.")
    ] = None,
    explain: Annotated[bool, typer.Option(help="Also print the SQL that ran, the rows it scans and the time.")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Print a funnel: one row per step (and group) with people, conversion, drop-off, median and p90 time from the step before."""
    from rta.query.funnel_request import FunnelRequest
    from rta.workspace import connect

    asked = FunnelRequest.of(name, last=last, by=[] if no_by else by, where=where or None)
    ws = connect(project)
    frame = ws.funnel(asked)
    if explain:
        explained = ws.explain_funnel(asked)
        typer.echo(f"{explained}\n{explained.sql}", err=True)
    print_frame(frame, fmt)
