"""The `rta` command: the app and its sub-apps, assembled from one module per group of commands.

Commands raise `RtaError` for what the user can fix; the app's group prints it and exits 2
(`rta.cli.common.RtaGroup`). The order below is the order `rta --help` lists them in.
"""

from __future__ import annotations

import typer

from rta.cli import bench, funnels, project, reports, run, send, share
from rta.cli.alerts import alerts_app
from rta.cli.common import RtaGroup
from rta.cli.keys import keys_app
from rta.cli.people import people_app

app = typer.Typer(help="rta: real-time analytics with metrics as code.", no_args_is_help=True, add_completion=False, cls=RtaGroup)
app.command()(project.init)
app.command("compile")(project.compile_)
app.command()(project.load)
app.command()(run.run)
app.command("flow-worker", hidden=True)(run.flow_worker)
app.command()(send.send)
app.command()(project.query)
app.command()(funnels.funnel)
app.command()(funnels.retention)
app.command()(funnels.paths)
app.command()(reports.report)
app.command()(share.share)
app.command()(project.sql)
app.command()(project.suggest)
app.command()(bench.bench)
app.add_typer(keys_app, name="keys")
app.add_typer(people_app, name="people")
app.add_typer(run.serve_app, name="serve")
app.add_typer(alerts_app, name="alerts")
app.add_typer(reports.reports_app, name="reports")

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the `rta` script."""
    app()
