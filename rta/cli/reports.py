"""`rta report` (one HTML report now) and `rta reports list | send` (the scheduled ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rta.cli.common import Format, ProjectOpt, deliver_each, open_project, parse_filters, print_frame, reports_folder
from rta.errors import RtaError

reports_app = typer.Typer(help="Scheduled reports: list, send now.", no_args_is_help=True)


def report(
    dashboard: Annotated[str | None, typer.Argument(help="The dashboard's name (optional when the project has one).")] = None,
    project: ProjectOpt = Path("."),
    last: Annotated[str | None, typer.Option(help="Time range back from now, e.g. 24h, 7d (default: the dashboard's).")] = None,
    grain: Annotated[str | None, typer.Option(help="auto, 1m, 1h or 1d.")] = None,
    where: Annotated[list[str] | None, typer.Option(help="Filter dim=value or dim=a,b (repeatable).")] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    pdf: Annotated[Path | None, typer.Option(help="Also print it to this PDF (needs Chromium).")] = None,
    png: Annotated[Path | None, typer.Option(help="Also write each chart as PNG into this folder.")] = None,
    svg: Annotated[Path | None, typer.Option(help="Also write each chart as SVG into this folder.")] = None,
    data: Annotated[Path | None, typer.Option(help="Also write each panel's data into this folder.")] = None,
    data_format: Annotated[str, typer.Option(help="csv or parquet.")] = "csv",
) -> None:
    """Write a self-contained HTML report of a dashboard: opens offline, one file."""
    from rta.dash import export_report
    from rta.workspace import connect

    files = export_report(
        connect(project),
        dashboard,
        out=out,
        pdf=pdf,
        images=png or svg,
        image_format="png" if png else "svg",
        data=data,
        data_format=data_format,
        last=last,
        grain=grain,
        where=parse_filters(where),
    )
    for written in (files.html, files.pdf, *files.images, *files.data):
        if written is not None:
            typer.echo(str(written))
    if files.failed:
        typer.echo(f"rta: {len(files.failed)} panel(s) could not be answered and show their error: {', '.join(files.failed)}", err=True)


@reports_app.command("list")
def reports_list(project: ProjectOpt = Path("."), fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """The project's scheduled reports: dashboard, schedule, where they go."""
    import polars as pl

    proj = open_project(project)
    rows = [
        {
            "report": r.name,
            "dashboard": r.dashboard,
            "every": r.every,
            "at": r.at if r.every != "1h" else "",
            "tz": r.tz,
            "last": r.last or "",
            "pdf": r.pdf,
            "notify": ", ".join(str(c) for c in r.notify),
        }
        for r in proj.definitions.reports
    ]
    print_frame(pl.DataFrame(rows) if rows else pl.DataFrame({"report": []}), fmt)


@reports_app.command("send")
def reports_send(name: Annotated[str, typer.Argument(help="The report's name.")], project: ProjectOpt = Path(".")) -> None:
    """Render a scheduled report now and deliver it to each of its channels (one attempt each)."""
    from datetime import UTC, datetime

    from rta.alerts.engine import allow_list, check_channels
    from rta.dash.scheduled import render
    from rta.workspace import connect

    proj = open_project(project)
    schedule = next((r for r in proj.definitions.reports if r.name == name), None)
    if schedule is None:
        known = ", ".join(r.name for r in proj.definitions.reports) or "none defined"
        raise RtaError(f"no scheduled report named {name!r}; the project has: {known}")
    allow = allow_list(proj.settings)
    check_channels([schedule], allow)
    notice = render(connect(project), schedule, reports_folder(proj), datetime.now(UTC), test=True)
    for written in notice.files:
        typer.echo(str(written))
    deliver_each(notice, schedule.notify, allow)
