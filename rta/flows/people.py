"""People through the flow: trait and alias rows of each batch, and erased ids dropped on replay.

Polars over the normalized events (:func:`rta.flows.events.normalize`): the stream's user column
(userId, else anonymousId), its time, and the people fields ``_tr`` (flattened traits, a JSON
object as text, decoded only for the events that carry one), ``_type`` (the Segment call),
``_anon`` (anonymousId) and ``_prev`` (an alias's previousId).
The rows go through flush groups like raw events, so a replay adds nothing (docs/architecture.md,
"Idempotent writes"); the tables keep the latest value per key (:mod:`rta.compiler.people_ddl`).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import msgspec
import polars as pl
from clickhouse_connect.driver.client import Client

from rta.compiler.plan import StreamPlan
from rta.contract.people import ALIASES_COLUMNS, ERASURES_TABLE, TRAITS_COLUMNS, erased_ids
from rta.contract.properties import TRAITS_JSON
from rta.store.erased import erased_mask

_TIME = pl.Datetime("ms", "UTC")
TRAITS_SCHEMA: dict[str, pl.DataType] = {"person": pl.String(), "key": pl.String(), "value": pl.String(), "updated": _TIME}
ALIASES_SCHEMA: dict[str, pl.DataType] = {"anonymous": pl.String(), "person": pl.String(), "at": _TIME}
_DECODE_TRAITS = msgspec.json.Decoder(dict[str, str]).decode
assert tuple(TRAITS_SCHEMA) == tuple(c for c, _ in TRAITS_COLUMNS) and tuple(ALIASES_SCHEMA) == tuple(c for c, _ in ALIASES_COLUMNS)


def _has(events: pl.DataFrame, *names: str) -> bool:
    return all(n in events.columns for n in names)


def trait_rows(events: pl.DataFrame, stream: StreamPlan) -> pl.DataFrame:
    """``(person, key, value, updated)``: each trait an event set, the latest per person and key of the batch."""
    user = stream.user
    if user is None or not _has(events, TRAITS_JSON) or events.is_empty():
        return pl.DataFrame(schema=TRAITS_SCHEMA)
    person = pl.col(user)
    given = events.filter(pl.col(TRAITS_JSON).is_not_null() & person.is_not_null() & (person != ""))
    if given.is_empty():
        return pl.DataFrame(schema=TRAITS_SCHEMA)
    traits = [_traits(text) for text in given[TRAITS_JSON].to_list()]  # identify calls, mostly: a few events of a batch
    rows = (
        given.lazy()
        .select(
            person.alias("person"),
            pl.Series("key", [list(t) for t in traits], pl.List(pl.String())),
            pl.Series("value", [list(t.values()) for t in traits], pl.List(pl.String())),
            pl.col(stream.time).alias("updated"),
        )
        .explode("key", "value")
        .filter(pl.col("key").is_not_null())
        # The batch's latest value per key; ties (one time) keep the later event, as the store's merge would.
        .group_by("person", "key", maintain_order=True)
        .agg(pl.col("value").sort_by("updated", maintain_order=True).last(), pl.col("updated").max())
        .collect()
    )
    return rows.select(pl.col(c).cast(t) for c, t in TRAITS_SCHEMA.items())


def _traits(text: str) -> dict[str, str]:
    """A line's traits (``_tr``): the API writes them; a line from elsewhere that spells them wrong sets none."""
    try:
        return _DECODE_TRAITS(text)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return {}


def alias_rows(events: pl.DataFrame, stream: StreamPlan) -> pl.DataFrame:
    """``(anonymous, person, at)``: ``alias`` calls link previousId to userId; any message with both ids links anonymousId."""
    user = stream.user
    if user is None or events.is_empty() or not _has(events, "_anon", "_prev"):
        return pl.DataFrame(schema=ALIASES_SCHEMA)
    person, at = pl.col(user), pl.col(stream.time)
    aliased = events.filter((pl.col("_type") == "alias") if "_type" in events.columns else pl.lit(False))
    links = pl.concat(
        [
            aliased.select(pl.col("_prev").alias("anonymous"), person.alias("person"), at.alias("at")),
            events.select(pl.col("_anon").alias("anonymous"), person.alias("person"), at.alias("at")),
        ]
    )
    valid = pl.col("anonymous").is_not_null() & (pl.col("anonymous") != "") & pl.col("person").is_not_null() & (pl.col("person") != "")
    rows = (
        links.filter(valid & (pl.col("anonymous") != pl.col("person")))
        .group_by("anonymous", maintain_order=True)
        .agg(pl.col("person").sort_by("at", maintain_order=True).last(), pl.col("at").max())
    )
    return rows.select(pl.col(c).cast(t) for c, t in ALIASES_SCHEMA.items())


def drop_erased(events: pl.DataFrame, stream: StreamPlan, erased: dict[str, datetime]) -> pl.DataFrame:
    """``events`` without those of an erased id (user or anonymous id) at or before its erasure.

    ``erased`` maps id hashes (:func:`rta.contract.people.id_hash`) to erasure times; the rule is
    the one the sink applies right before each insert (:func:`rta.store.erased.erased_mask`).
    """
    if stream.user is None:
        return events
    keep = erased_mask(events, (stream.user, "_anon"), stream.time, erased)
    return events if keep is None else events.filter(keep)


class Erasures:
    """The erased ids the flow drops at parsing, read from the store at start and again every ``every`` seconds.

    Reads happen on the flow's thread when a batch asks and the last read is older than
    ``every``. This early drop keeps a replay of erased people's events out of rollups and
    visits; what makes erasure final is the sink's check right before each insert of ids
    (:mod:`rta.store.erased`), which also covers what cluster processes without a client
    (nothing is dropped here) parse.
    """

    def __init__(self, client: Client | None, *, every: float = 10.0) -> None:
        self._client = client
        self._every = every
        self._read_at = -float("inf")
        self._erased: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def current(self) -> dict[str, datetime]:
        """The id hashes erased and when, refreshed when stale."""
        if self._client is None:
            return self._erased
        with self._lock:
            if time.monotonic() - self._read_at >= self._every:
                self._erased = self._read(self._client)
                self._read_at = time.monotonic()
            return self._erased

    @staticmethod
    def _read(client: Client) -> dict[str, datetime]:
        exists = "SELECT count() FROM system.tables WHERE database = currentDatabase() AND name = {table:String}"
        if not client.query(exists, parameters={"table": ERASURES_TABLE}).result_rows[0][0]:
            return {}
        rows = client.query(erased_ids().sql(dialect="clickhouse")).result_rows
        return {str(h): (at if at.tzinfo else at.replace(tzinfo=UTC)) for h, at in rows}
