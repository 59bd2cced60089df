"""The one way to reach ClickHouse: clickhouse-connect, embedded (``chdb://DIR``) or a server."""

from __future__ import annotations

import fcntl
import weakref
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from rta.errors import BackendError

EMBEDDED = "chdb://"
_MADE: weakref.WeakKeyDictionary[Client, tuple[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def resolve_dsn(dsn: str, base: Path) -> str:
    """Make an embedded DSN's directory absolute (relative to the project ``base``)."""
    if not dsn.startswith(EMBEDDED) or dsn == "chdb://memory":
        return dsn
    path = Path(dsn[len(EMBEDDED) :])
    return EMBEDDED + str(path if path.is_absolute() else (base / path).resolve())


def connect(dsn: str, **settings: Any) -> Client:
    """A clickhouse-connect client for ``dsn``; embedded data dirs are created when missing."""
    if dsn.startswith(EMBEDDED) and dsn != "chdb://memory":
        Path(dsn[len(EMBEDDED) :]).mkdir(parents=True, exist_ok=True)
    # A server session runs one query at a time ("session is locked"); the query API runs many at once.
    options: dict[str, Any] = {} if dsn.startswith(EMBEDDED) else {"autogenerate_session_id": False}
    try:
        client = clickhouse_connect.get_client(dsn=dsn, settings=settings or None, **options)
        client.command("SELECT 1")  # chdb opens its data dir lazily: surface a locked dir here
        _MADE[client] = (dsn, settings)
        return client
    except Exception as err:
        owner = _lock_owner(Path(dsn[len(EMBEDDED) :])) if dsn.startswith(EMBEDDED) else None
        if owner is not None:
            msg = (
                f"the embedded store {dsn!r} is open in another process ({owner}); only one process may "
                "open a chdb data dir: stop `rta run` there, or point RTA_CLICKHOUSE_DSN at a ClickHouse server"
            )
            raise BackendError(msg) from None
        text = str(err)
        msg = f"cannot connect to ClickHouse at {dsn!r}: {text.splitlines()[0] if text else type(err).__name__}"
        raise BackendError(msg) from err


def is_embedded(client: Client) -> bool:
    """Whether ``client`` runs ClickHouse in this process (chdb), whose statistics count the rows it
    returns as "read": explanations estimate what it scans instead (:func:`rows_scanned`)."""
    return type(client).__name__ == "ChdbClient"


def rows_scanned(client: Client, sql: str, params: dict[str, object]) -> int:
    """The rows ``sql`` reads from its tables by ClickHouse's own estimate (``EXPLAIN ESTIMATE``: whole granules)."""
    rows = client.query(f"EXPLAIN ESTIMATE {sql}", parameters=params).named_results()
    return sum(int(r["rows"]) for r in rows)


def sibling(client: Client) -> Client | None:
    """Another client to ``client``'s store, with its own session, so that both run queries at
    once; None when ``client`` was not made by :func:`connect`."""
    made = _MADE.get(client)
    return None if made is None else connect(made[0], **made[1])


def _lock_owner(data_dir: Path) -> str | None:
    """Who holds the data dir's lock ("pid N"), or None when nobody does."""
    status = data_dir / "status"
    try:
        with status.open("rb") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                pid = next((line.split(b":")[1].strip().decode() for line in handle.read().splitlines() if line.startswith(b"PID:")), "?")
                return f"pid {pid}"
            fcntl.flock(handle, fcntl.LOCK_UN)
    except FileNotFoundError:
        return None
    return None
