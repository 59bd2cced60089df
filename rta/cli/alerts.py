"""`rta alerts list | test | history | silence | backtest`: the project's alert rules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rta.cli.common import Format, ProjectOpt, deliver_each, local_workspace, open_project, print_frame

alerts_app = typer.Typer(help="Alert rules: list, test, history, silence, backtest.", no_args_is_help=True)


@alerts_app.command("list")
def alerts_list(project: ProjectOpt = Path("."), fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """The project's alert rules, their channels and silences."""
    import polars as pl

    from rta.alerts.view import rule_table

    proj = open_project(project)
    rules = rule_table(proj.definitions.alerts, proj.root)
    shown = rules.select(
        "alert",
        "condition",
        "by",
        pending=(pl.col("pending_s") // 60).cast(pl.String) + "m",
        notify="notify",
        **{"silenced until": pl.col("silenced_until").dt.strftime("%Y-%m-%d %H:%M UTC").fill_null("")},
    )
    print_frame(shown, fmt)


@alerts_app.command("test")
def alerts_test(name: Annotated[str, typer.Argument(help="The alert's name.")], project: ProjectOpt = Path(".")) -> None:
    """Send a test notification to each of the rule's channels now (and show its reading when the store is free)."""
    from datetime import UTC, datetime

    from rta.alerts.engine import allow_list, check_channels
    from rta.alerts.notify import Notification
    from rta.workspace import Workspace, connect

    proj = open_project(project)
    rule = proj.definitions.alert(name)
    allow = allow_list(proj.settings)
    check_channels([rule], allow)
    ws = connect(project)
    if isinstance(ws, Workspace):
        reading = ws.alerts.check(rule)
        print_frame(reading, Format.table)
    groups: tuple[tuple[dict[str, str], float | None], ...] = (({}, None),)
    note = Notification(rule.name, "firing", datetime.now(UTC), rule.condition.describe(), groups, description=rule.description, test=True)
    deliver_each(note, rule.notify, allow)


@alerts_app.command("history")
def alerts_history(
    project: ProjectOpt = Path("."),
    rule: Annotated[str | None, typer.Option(help="Only this rule.")] = None,
    notifications: Annotated[bool, typer.Option(help="Only notifications (not every evaluation).")] = False,
    limit: Annotated[int, typer.Option(help="Newest rows to show.")] = 50,
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """Evaluations and notifications, newest first (also while `rta run` owns the store)."""
    import polars as pl

    from rta.workspace import Workspace, connect

    ws = connect(project)
    kind = "notification" if notifications else None
    if isinstance(ws, Workspace):
        frame = ws.alerts.history(rule, kind=kind, limit=limit)
    else:  # through the running process's SQL console: filters apply here, never spliced into SQL
        frame = ws.sql("SELECT * FROM alert_history ORDER BY recorded DESC, at DESC LIMIT 100000")
        frame = frame.filter(*([pl.col("rule") == rule] if rule else []), *([pl.col("kind") == kind] if kind else [])).head(limit)
    print_frame(frame.select("at", "rule", "group", "kind", "status", "value", "channel", "detail"), fmt)


@alerts_app.command("silence")
def alerts_silence(
    name: Annotated[str, typer.Argument(help="The alert's name.")],
    for_: Annotated[str, typer.Option("--for", help="How long, e.g. 30m, 2h, 1d.")] = "1h",
    project: ProjectOpt = Path("."),
) -> None:
    """Hold a rule's notifications for a while (it is still evaluated and recorded)."""
    from rta.alerts.engine import silence
    from rta.dsl.durations import parse_duration

    proj = open_project(project)
    proj.definitions.alert(name)
    until = silence(proj.root, name, parse_duration(for_, what="--for"))
    typer.echo(f"{name}: silenced until {until:%Y-%m-%d %H:%M} UTC")


@alerts_app.command("backtest")
def alerts_backtest(
    name: Annotated[str, typer.Argument(help="The alert's name.")],
    project: ProjectOpt = Path("."),
    last: Annotated[str, typer.Option(help="How far back, e.g. 7d, 30d.")] = "7d",
    fmt: Annotated[Format, typer.Option("--format")] = Format.table,
) -> None:
    """When the rule would have fired over a past range (pending, keep-firing and cooldown included)."""
    ws = local_workspace(project, "rta alerts backtest")
    result = ws.alerts.backtest(name, last=last)
    typer.echo(repr(result), err=True)
    print_frame(result.notifications, fmt)
