"""`rta send`: events to a running collect API with the Python SDK."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rta.cli.common import DEFAULT_URL, ProjectOpt, running_url
from rta.errors import RtaError

if TYPE_CHECKING:
    from rta.sdk import Client as Sender


def send(
    files: Annotated[list[Path], typer.Argument(help="JSON-lines files: Segment messages, or flat events as `rta load` reads them.")],
    key: Annotated[str, typer.Option("--key", envvar="RTA_WRITE_KEY", help="A write key (or $RTA_WRITE_KEY).")],
    host: Annotated[str | None, typer.Option(help="The collect API (default: the one `rta run` serves for --project).")] = None,
    project: ProjectOpt = Path("."),
    max_wait: Annotated[str, typer.Option(help="How long to wait for a collect API that stopped answering, e.g. 90s, 10m.")] = "10m",
) -> None:
    """Send events to a running collect API with the Python SDK (batched, gzipped, retried).

    Lines without an id get one derived from the file's content and the line's number, so sending
    a file again (or a copy of it) counts each event once. While the API does not answer, what
    is in flight is spilled to disk and reading waits, up to --max-wait. Exit status: 0 when every
    event was acknowledged; 1 when some were refused or were not JSON; 75 when some were not
    acknowledged (send the same files again).
    """
    import json
    import tempfile

    from rta.dsl.durations import parse_duration
    from rta.sdk import Client, file_digest, message_from

    host = host or running_url(project, "collect") or DEFAULT_URL
    patience = parse_duration(max_wait, what="--max-wait")
    for path in files:
        if not path.is_file():
            raise RtaError(f"cannot send {str(path)!r}: no such file")
    bad = unread = 0
    with tempfile.TemporaryDirectory(prefix="rta-send-") as spill:
        client = Client(key, host, block=True, max_retries=3, max_backoff=2.0, spill_dir=spill)
        watch = _SendWatch(client, host, patience)
        for path in files:
            digest = file_digest(path)
            with path.open() as lines:
                for number, line in enumerate(lines, start=1):
                    if not line.strip():
                        continue
                    if unread or not watch.wait_for_server():
                        unread += 1  # given up: counted, not sent
                        continue
                    try:
                        item = json.loads(line)
                    except ValueError as err:
                        bad += 1
                        typer.echo(f"{path}:{number}: not JSON ({err}); skipped", err=True)
                        continue
                    client.send(message_from(item, f"{digest}-{number}"))
        if not unread:
            watch.drain()
        client.close(timeout=15)
        unacknowledged = client.pending + unread
    typer.echo(f"sent {client.sent:,} events; dropped {client.dropped:,}; {bad:,} lines were not JSON (collect API: {host})", err=True)
    for reason in client.rejected[:5]:
        typer.echo(f"refused: {reason}", err=True)
    if unacknowledged:
        typer.echo(
            f"error: {unacknowledged:,} events were not acknowledged: {host} did not answer for {max_wait} "
            f"({client.last_error or 'no answer'}); sending the same files again is safe: events keep their ids, "
            "and the collect API counts an id it saw within its dedup window (1 hour by default) once",
            err=True,
        )
    if client.dropped or bad:
        raise typer.Exit(1)
    if unacknowledged:
        raise typer.Exit(75)  # EX_TEMPFAIL: try again later


class _SendWatch:
    """How long `rta send` waits for a collect API that stopped answering, and what it prints meanwhile."""

    def __init__(self, client: Sender, host: str, patience: float, every: float = 10.0) -> None:
        self._client = client
        self._host = host
        self._patience = patience
        self._every = every
        self._said = 0.0
        self._away = False

    def wait_for_server(self) -> bool:
        """Return at once while the API answers; else wait until it does (True) or for too long (False)."""
        while self._client.outage_since is not None:
            if not self._tick() or not self._client.running:
                return False
            time.sleep(0.1)
        self._tick()
        return True

    def drain(self) -> bool:
        """Wait until every event was answered (True), or the API was away for too long (False)."""
        while self._client.pending:
            if not self._tick() or not self._client.running:
                return False
            time.sleep(0.1)
        return True

    def _tick(self) -> bool:
        now, since = time.monotonic(), self._client.outage_since
        if since is None:
            if self._away:
                self._away = False
                typer.echo(f"rta send: {self._host} answers again; {self._client.pending:,} events on their way", err=True)
            return True
        if now - since > self._patience:
            return False
        if not self._away or now - self._said >= self._every:  # at once when it goes away, then now and then
            self._away = True
            self._said = now
            typer.echo(
                f"rta send: {self._host} has not answered for {now - since:.0f}s ({self._client.last_error}); "
                f"{self._client.pending:,} events wait ({self._client.spilled:,} spilled to disk); "
                f"giving up in {self._patience - (now - since):.0f}s",
                err=True,
            )
        return True
