"""`rta share`: a lasting link to one dashboard's live page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rta.cli.common import DEFAULT_URL, ProjectOpt, key_store, running_url


def share(
    dashboard: Annotated[str, typer.Argument(help="The dashboard's name.")],
    project: ProjectOpt = Path("."),
    url: Annotated[str | None, typer.Option(help="Where the page is reachable (default: where this project is served now).")] = None,
) -> None:
    """Create a share token for one dashboard's live page (revoke it with `rta keys revoke ID`)."""
    from rta.dash.pages import share_name
    from rta.project import load_project

    load_project(project).definitions.dashboard(dashboard)
    key, secret = key_store(project).create("share", share_name(dashboard))
    served = running_url(project, "pages")
    if url is None and served is None:
        typer.echo(f"note: nothing serves this project now; the link opens once `rta run` listens on {DEFAULT_URL}", err=True)
    typer.echo(f"{(url or served or DEFAULT_URL).rstrip('/')}/d/{dashboard}?token={secret}")
    typer.echo(
        f"created share key {key.id} for dashboard {dashboard!r}; it opens that page only; `rta keys revoke {key.id}` ends it", err=True
    )
