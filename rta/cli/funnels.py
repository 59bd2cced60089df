"""`rta funnel NAME`, `rta retention NAME`, `rta paths NAME`: declared per-person answers, from raw events.

The three take the same options (range, breakdown, filter, explain, format); paths add ``--top``,
funnels ``--every``/``--window`` (one funnel per window), retention ``--wide`` (one row per cohort).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rta.cli.common import Format, ProjectOpt, print_frame

if TYPE_CHECKING:
    from rta.query.person_request import PersonRequest

LastOpt = Annotated[str | None, typer.Option(help="Time range back from now, e.g. 24h, 7d (default 7d; retention: every x periods).")]
ByOpt = Annotated[
    list[str] | None,
    typer.Option(help="Break down by a dimension, prop.<property> or person.<trait> (repeatable; default the definition's)."),
]
NoByOpt = Annotated[bool, typer.Option("--no-by", help="No breakdown, even if the definition declares one.")]
WhereOpt = Annotated[list[str] | None, typer.Option(help="Filter the events (repeatable; all must hold), as in `rta query --where`.")]
ExplainOpt = Annotated[bool, typer.Option(help="Also print the SQL that ran, the rows it scans and the time.")]
FormatOpt = Annotated[Format, typer.Option("--format", help="Output format.")]


def _run(kind: str, request: PersonRequest, project: Path, explain: bool, fmt: Format, wide: bool = False) -> None:
    from rta.workspace import connect

    ws = connect(project)
    frame = getattr(ws, kind)(request)
    if explain:
        explained = getattr(ws, f"explain_{kind}")(request)
        typer.echo(f"{explained}\n{explained.sql}", err=True)
    if wide:
        from rta.query.retention_answer import wide as pivot

        frame = pivot(frame)
    print_frame(frame, fmt)


def funnel(
    name: Annotated[str, typer.Argument(help="The funnel's name (declared with funnel(...) in metrics/*.py).")],
    project: ProjectOpt = Path("."),
    last: LastOpt = None,
    by: ByOpt = None,
    no_by: NoByOpt = False,
    where: WhereOpt = None,
    every: Annotated[
        str | None, typer.Option(help="One funnel per window, windows ending this far apart, e.g. 1d (conversion over time).")
    ] = None,
    window: Annotated[str | None, typer.Option(help="With --every: each window's length (default --every).")] = None,
    explain: ExplainOpt = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Print a funnel: one row per step (and group) with people, conversion, drop-off, median and p90 time from the step before."""
    from rta.query.person_request import FunnelRequest

    asked = FunnelRequest.of(name, last=last, by=[] if no_by else by, where=where or None, every=every, window=window)
    _run("funnel", asked, project, explain, fmt)


def retention(
    name: Annotated[str, typer.Argument(help="The retention's name (declared with retention(...) in metrics/*.py).")],
    project: ProjectOpt = Path("."),
    last: LastOpt = None,
    by: ByOpt = None,
    no_by: NoByOpt = False,
    where: WhereOpt = None,
    explain: ExplainOpt = False,
    wide: Annotated[bool, typer.Option(help="One row per cohort, a column per period (the share retained).")] = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Print a retention matrix: per cohort (and group) and period, the cohort's size, the people back and the share."""
    from rta.query.person_request import RetentionRequest

    asked = RetentionRequest.of(name, last=last, by=[] if no_by else by, where=where or None)
    _run("retention", asked, project, explain, fmt, wide)


def paths(
    name: Annotated[str, typer.Argument(help="The paths' name (declared with paths(...) in metrics/*.py).")],
    project: ProjectOpt = Path("."),
    last: LastOpt = None,
    by: ByOpt = None,
    no_by: NoByOpt = False,
    where: WhereOpt = None,
    top: Annotated[int | None, typer.Option(help="How many paths per group (default 20).")] = None,
    explain: ExplainOpt = False,
    fmt: FormatOpt = Format.table,
) -> None:
    """Print paths: the most common sequences of events after each person's first anchor event, with people and share."""
    from rta.query.person_request import PathsRequest

    asked = PathsRequest.of(name, last=last, by=[] if no_by else by, where=where or None, top=top)
    _run("paths", asked, project, explain, fmt)
