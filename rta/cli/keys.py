"""`rta keys create | list | revoke`: the project's API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rta.cli.common import ProjectOpt, key_store

keys_app = typer.Typer(help="API keys: read keys query, write keys only ingest.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    kind: Annotated[str, typer.Argument(help="read (queries, dashboards), write (ingest only) or admin (erase people only).")],
    project: ProjectOpt = Path("."),
    name: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create a key; its secret is printed once."""
    key, secret = key_store(project).create(kind, name)  # type: ignore[arg-type]
    typer.echo(secret)
    typer.echo(f"created {key.kind} key {key.id} ({key.name}); store the secret now, it is not shown again", err=True)


@keys_app.command("list")
def keys_list(project: ProjectOpt = Path(".")) -> None:
    """List keys (ids, kinds, names; never secrets)."""
    for key in key_store(project).list():
        state = f"revoked {key.revoked}" if key.revoked else "active"
        typer.echo(f"{key.id}  {key.kind:<5}  {key.name:<20}  created {key.created}  {state}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")], project: ProjectOpt = Path(".")) -> None:
    """Revoke a key; it stops working at once."""
    key = key_store(project).revoke(key_id)
    typer.echo(f"revoked {key.kind} key {key.id} ({key.name})")
