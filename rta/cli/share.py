"""`rta share`: a lasting link to one dashboard's live page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rta.cli.common import ProjectOpt, key_store


def share(
    dashboard: Annotated[str, typer.Argument(help="The dashboard's name.")],
    project: ProjectOpt = Path("."),
    url: Annotated[str, typer.Option(help="Where rta run or rta serve query is reachable.")] = "http://127.0.0.1:8765",
) -> None:
    """Create a share token for one dashboard's live page (revoke it with `rta keys revoke ID`)."""
    from rta.dash.pages import share_name
    from rta.project import load_project

    load_project(project).definitions.dashboard(dashboard)
    key, secret = key_store(project).create("share", share_name(dashboard))
    typer.echo(f"{url.rstrip('/')}/d/{dashboard}?token={secret}")
    typer.echo(
        f"created share key {key.id} for dashboard {dashboard!r}; it opens that page only; `rta keys revoke {key.id}` ends it", err=True
    )
