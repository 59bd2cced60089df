"""`rta init`, `compile`, `load`, `query`, `sql`, `suggest`: a project's definitions and its store."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from rta.cli.common import Format, ProjectOpt, open_project, open_store, print_frame, progress_reporter, stream_name
from rta.errors import RtaError

TEMPLATES = {
    "shop": "a web shop: traffic, a checkout funnel, revenue, audience",
    "web": "web analytics, Plausible-like: visits, pages, sources",
}


def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create.")],
    template: Annotated[
        str, typer.Option(help=f"The example to start from: {', '.join(f'{k} ({v})' for k, v in TEMPLATES.items())}.")
    ] = "shop",
) -> None:
    """Create a project folder with rta.toml and an example metrics file."""
    if template not in TEMPLATES:
        raise RtaError(
            f"unknown template {template!r}; valid templates are: {', '.join(TEMPLATES)} (e.g. rta init myproject --template web)"
        )
    config = directory / "rta.toml"
    if config.exists():
        raise RtaError(f"{config} already exists; pick another folder or edit it")
    (directory / "metrics").mkdir(parents=True, exist_ok=True)
    example = resources.files("rta.examples").joinpath(f"{template}.py").read_text()
    (directory / "metrics" / f"{template}.py").write_text(example)
    config.write_text('[store]\ndsn = "chdb://data"   # or http://host:8123; RTA_CLICKHOUSE_DSN overrides\n')
    typer.echo(f"created {config} and {directory / 'metrics' / f'{template}.py'}\nnext: cd {directory} && rta run --demo")


def compile_(project: ProjectOpt = Path(".")) -> None:
    """Print the compiled plan: ClickHouse DDL and the dataflow steps."""
    typer.echo(str(open_project(project).plan), nl=False)


def load(
    files: Annotated[list[Path], typer.Argument(help="JSON-lines (.jsonl, .ndjson) or Parquet files.")],
    project: ProjectOpt = Path("."),
    stream: Annotated[str | None, typer.Option(help="Stream the events belong to.")] = None,
    declared_only: Annotated[
        bool,
        typer.Option("--declared-only", help="Read only the declared fields of JSON lines: ~10x faster; other properties are dropped."),
    ] = False,
) -> None:
    """Replay event files through the flow into the store; events whose insert id was loaded before add nothing.

    So loading a file twice, the same events in another order, or split into other files, counts
    each event once (events without an insert id count each time their file's content is new).
    """
    from datetime import UTC, datetime

    from rta.flows.runner import run_flow, summary
    from rta.flows.sources import FileSource, LoadedIds
    from rta.flows.stats import FlowStats

    proj = open_project(project)
    plan_stream = proj.plan.stream(stream_name(proj, stream))
    keep = not declared_only
    sources = [FileSource(files, plan_stream, properties=keep)]  # checks every file before the store opens
    client = open_store(proj)
    now = datetime.now(UTC)  # the whole load is judged (late, ahead) at one time, as its repeats are
    loaded = LoadedIds.read(client, plan_stream, now) if plan_stream.insert_id else None
    if loaded is not None:  # a flow per file: what a file keeps then depends on the record and the file only
        sources = [FileSource([f], plan_stream, loaded=loaded, properties=keep) for f in files]
    stats, report = FlowStats(), progress_reporter()
    for source in sources:
        run_flow(proj.plan, source, client, stats=stats, report=report, clock=lambda: now)
        if loaded is not None:
            loaded.commit(client)  # after every insert of the file landed
    repeats = f"\nskipped {loaded.repeats:,} events whose insert id was already loaded" if loaded and loaded.repeats else ""
    typer.echo("\n" + summary(stats) + repeats, err=True)


def query(
    metrics: Annotated[list[str], typer.Argument(help="Metric names.")],
    project: ProjectOpt = Path("."),
    last: Annotated[str, typer.Option(help="Time range back from now, e.g. 24h, 7d.")] = "7d",
    grain: Annotated[str, typer.Option(help="Bucket size: auto, 1m, 1h, 1d, or total (one row per group).")] = "auto",
    total: Annotated[bool, typer.Option("--total", help="One row per group over the whole range (same as --grain total).")] = False,
    by: Annotated[list[str] | None, typer.Option(help="Split by a dimension, prop.<property> or person.<trait> (repeatable).")] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            help="Filter (repeatable; all must hold): dim=a,b, dim!=a,b, revenue>10 (>= < <=), between(revenue,10,50), "
            "contains(path,text), startswith(path,/blog), endswith(path,.html), is_null(revenue), is_not_null(revenue), "
            "or a JSON filter tree."
        ),
    ] = None,
    compare: Annotated[str | None, typer.Option(help="previous_period, previous_day, previous_week or previous_year.")] = None,
    top: Annotated[int | None, typer.Option(help="Keep the N largest groups of --by.")] = None,
    explain: Annotated[bool, typer.Option(help="Tell which tables answered and what they read.")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Print metrics by time bucket (or one row per group with --total).

    From the rollups, or from raw events where no rollup answers (--by prop.plan, --by person.plan, --where 'revenue>10').

    By default hourly buckets over the last 7 days; --last 1h --total gives one row per group.
    """
    from rta.query.request import QueryRequest
    from rta.workspace import connect

    asked = QueryRequest.of(metrics, last=last, grain=grain, total=total or None, by=by, where=where or None, compare=compare, top=top)
    ws = connect(project)
    # Explaining first answers from the store (a cache miss); the query then reads the cache.
    explained = ws.explain(asked) if explain else None
    answer = ws.answer(asked)
    if explained is not None:
        typer.echo(str(explained), err=True)
    elif answer.notice is not None:  # the explanation says it already
        typer.echo(f"note: {answer.notice}", err=True)
    print_frame(answer.frame, fmt)


def sql(
    statement: Annotated[str, typer.Argument(help="One SELECT; stream names stand for raw events, <rollup>_<grain> for rollups.")],
    project: ProjectOpt = Path("."),
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
) -> None:
    """Run a read-only SELECT over the project's tables, with time, row and memory limits."""
    from rta.workspace import connect

    print_frame(connect(project).sql(statement), fmt)


def suggest(
    project: ProjectOpt = Path("."),
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="A dashboard filter (repeatable); default: rta.toml [dashboards] filters.")
    ] = None,
) -> None:
    """Suggest rollups so every metric answers, fast, under the dashboards' filters."""
    from rta.query.suggest import suggest_rollups

    proj = open_project(project)
    chosen = filters or proj.settings.get("dashboards", {}).get("filters", [])
    if not chosen:
        raise RtaError("no dashboard filters: pass --filter country --filter device, or set [dashboards] filters = [...] in rta.toml")
    found = suggest_rollups(proj.plan, chosen)
    if not found:
        typer.echo(f"every metric answers from a fitting rollup under filters {', '.join(chosen)}")
    for s in found:
        typer.echo(f"# {s.reason}\n{s.code()}")
