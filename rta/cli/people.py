"""`rta people show | delete`: one person, and erasing one (GDPR/CCPA)."""

from __future__ import annotations

import getpass
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from rta.cli.common import ProjectOpt, key_store, open_project, open_store, running_url
from rta.errors import RtaError

people_app = typer.Typer(help="People: show one; erase one with every id, trait and raw event of theirs.", no_args_is_help=True)

PersonArg = Annotated[str, typer.Argument(help="The person's user id (an anonymous id is shown as its person).")]


@people_app.command("show")
def people_show(
    person_id: PersonArg,
    project: ProjectOpt = Path("."),
    limit: Annotated[int, typer.Option(help="Newest events shown.")] = 20,
) -> None:
    """A person's ids, traits, first and last seen, and newest events."""
    from rta.workspace import connect

    typer.echo(repr(connect(project).person(person_id, limit=limit)))


@people_app.command("delete")
def people_delete(
    person_id: Annotated[str, typer.Argument(help="The person's user id: it and the anonymous ids aliased to it are erased.")],
    project: ProjectOpt = Path("."),
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a person: their traits, aliases and raw events (all their ids); the request is recorded. Rollups stay."""
    if not yes:
        typer.confirm(f"erase everything stored about {person_id!r} (traits, aliases, raw events)? This cannot be undone", abort=True)
    who = f"rta people delete by {getpass.getuser()}"
    url = running_url(project, "query")
    if url is not None:  # the running process holds the store: it erases, through its API, with a key made for this call
        typer.echo(_through_api(project, url, person_id, who))
        return
    from rta.store.people import erase

    proj = open_project(project)
    typer.echo(str(erase(open_store(proj), proj.plan, person_id, who)))  # the command's process ends with it, as other commands'


def _through_api(project: Path, url: str, person_id: str, who: str) -> str:
    keys = key_store(project)
    key, secret = keys.create("admin", who)
    try:
        request = urllib.request.Request(
            url + "/v1/people/delete",
            data=json.dumps({"id": person_id}).encode(),
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as err:
            try:
                reason = json.loads(err.read())["error"]
            except (ValueError, KeyError, TypeError):
                reason = f"HTTP {err.code}"
            raise RtaError(f"the process holding the store at {url} refused the erasure: {reason}") from None
        except OSError as err:
            raise RtaError(f"cannot reach the process holding the store at {url}: {getattr(err, 'reason', err)}; is it running?") from None
    finally:
        keys.revoke(key.id)
    removed = ", ".join(f"{n:,} from {t}" for t, n in answer["rows"].items() if n) or "nothing (no rows had these ids)"
    return (
        f"erased person {answer['person']!r} ({', '.join(answer['ids'])}) through {url}: {answer['total']:,} rows removed: {removed}\n"
        f"recorded at {answer['at']} for {answer['requested_by']}; replays of their events are dropped\n{answer['rollups']}"
    )
