"""What the `rta` commands share: the error handling, options, output, the project and its store."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from rta.errors import RtaError

if TYPE_CHECKING:  # the CLI imports its layers lazily: `rta --help` stays fast
    from collections.abc import Callable

    import polars as pl
    from clickhouse_connect.driver.client import Client

    from rta.alerts.notify import Message
    from rta.alerts.ssrf import AllowList
    from rta.contract.keys import KeyStore
    from rta.dsl.channels import Channel
    from rta.flows.stats import FlowStats
    from rta.project import Project
    from rta.workspace import Workspace

EXIT_ERROR = 2  # what an RtaError exits with (a usage error's code, as click's own)


class RtaGroup(TyperGroup):
    """The `rta` group: an `RtaError` from any command prints its message and exits 2; other exceptions keep their traceback."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer 0.29 vendors click as typer._click, older ones use click)
        try:
            return super().invoke(ctx)
        except RtaError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(EXIT_ERROR) from None


ProjectOpt = Annotated[Path, typer.Option("--project", "-p", help="Project folder (holds rta.toml and metrics/).")]


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def open_project(root: Path) -> Project:
    from rta.project import load_project

    return load_project(root)


def open_store(project: Project) -> Client:
    from rta.store.client import connect
    from rta.store.schema import apply

    client = connect(project.dsn)
    apply(project.plan, client)
    return client


def stream_name(project: Project, stream: str | None) -> str:
    names = [s.name for s in project.plan.streams]
    if stream is None:
        if len(names) != 1:
            raise RtaError(f"the project has streams {names}; choose one with --stream")
        return names[0]
    project.definitions.stream(stream)
    return stream


def progress_reporter() -> Callable[[FlowStats], None]:
    from rta.flows.runner import progress_line

    previous: dict[str, float] = {}
    tty = sys.stderr.isatty()

    def report(stats: FlowStats) -> None:
        line = progress_line(stats, previous)
        sys.stderr.write(f"\r{line}" if tty else f"{line}\n")
        sys.stderr.flush()

    return report


def print_frame(frame: pl.DataFrame, fmt: Format) -> None:
    """A frame as a table, CSV or JSON. Floats are shown to 12 significant digits: sums of
    floats carry noise in their last bits (1921.2500000000002) that no reader wants."""
    import polars as pl

    frame = frame.with_columns(pl.col(pl.Float32, pl.Float64).round_sig_figs(12))
    if fmt is Format.json:
        typer.echo(frame.write_json())
    elif fmt is Format.csv:
        typer.echo(frame.write_csv(), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(*frame.columns)
        for row in frame.iter_rows():
            table.add_row(*(_cell(v) for v in row))
        Console().print(table)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() or abs(value) >= 1000 else f"{value:,.4g}"
    return str(value)


DEFAULT_URL = "http://127.0.0.1:8765"  # where `rta run` listens unless told otherwise


def running_url(project: Path, face: str) -> str | None:
    """Where a live process serves ``project`` (its run file), if it serves ``face``: "collect"
    (only `rta run` receives events) or "pages" and "query" (any owner of the store)."""
    from rta.workspace.owner import read_owner

    owner = read_owner(project.resolve())
    return None if owner is None or (face == "collect" and not owner.collect) else owner.url


def key_store(project: Path) -> KeyStore:
    from rta.contract.keys import KeyStore

    if not project.is_dir():
        raise RtaError(f"project folder {str(project)!r} does not exist; create one with `rta init {project}`")
    return KeyStore(project.resolve())


def parse_filters(where: list[str] | None) -> dict[str, list[str]]:
    """--where dim=value or dim=a,b (repeatable) as a where= mapping."""
    filters: dict[str, list[str]] = {}
    for item in where or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise RtaError(f"--where takes dim=value or dim=a,b, got {item!r}")
        filters.setdefault(name.strip(), []).extend(v.strip() for v in value.split(","))
    return filters


def reports_folder(proj: Project) -> Path:
    section = proj.settings.get("reports", {})
    folder = section.get("folder", "reports") if isinstance(section, dict) else "reports"
    if not isinstance(folder, str) or not folder:
        raise RtaError(f"rta.toml: [reports] folder takes a path, got {folder!r}")
    return proj.root / folder


def local_workspace(project: Path, what: str) -> Workspace:
    from rta.workspace import Workspace, connect

    ws = connect(project)
    if not isinstance(ws, Workspace):
        raise RtaError(f"{what} reads the store directly, and `rta run` owns it now; run it in a notebook with ws.alerts, or stop rta run")
    return ws


def deliver_each(message: Message, channels: tuple[Channel, ...], allow: AllowList) -> None:
    """One delivery attempt per channel, now; exit 1 if any failed (`rta alerts test`, `rta reports send`)."""
    from rta.alerts.notify import DeliveryError, Notifier

    failed = 0
    for target in channels:
        try:
            Notifier(allow=allow).deliver(message, target)
            typer.echo(f"{target}: delivered")
        except DeliveryError as err:
            failed += 1
            typer.echo(f"{target}: failed: {err}", err=True)
    if failed:
        raise typer.Exit(1)
