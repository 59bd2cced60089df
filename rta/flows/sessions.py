"""Sessions in the flow: each batch's events joined to the open sessions of their people, vectorized.

A *session* (a visit) is one person's events with no gap over ``gap`` between consecutive ones,
at most ``max`` from its first event to its last; events carrying a client session id
(``context.sessionId``, PostHog's ``$session_id``) form one session per id instead, whatever their
gaps. A person is the event's user id, else its anonymous id, else the user an anonymous id was seen
with (an identified call carrying both); the alias re-keys the open sessions of the anonymous id.

The state is the open sessions, one row each, summarized so that merging summaries equals
sessionizing their events (docs/architecture.md, "Sessions"): first and last times with the insert
ids that break ties, counts, and each "first"/"last" value with the (time, insert id) it came from.
A batch becomes one-event pieces, merged with the open sessions of the same keys by a sort and a
running maximum (:func:`merge`), whatever order events came in: a late event may extend a session,
start one earlier, or join two. What changed goes out as signed rows: ``-1`` for a session as it was
written before, ``+1`` as it is now, so the store's sum of signs per session is 1 for the sessions
that exist and 0 for those merged away. A session is closed, and leaves the state, once the
watermark (the newest event time seen, never ahead of the clock) passes its end by ``gap`` plus
``lateness``; an event later than that starts a session of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from rta.compiler.plan import StreamPlan

TIME = pl.Datetime("ms", "UTC")
PAGE_EVENTS = ("page_view", "screen_view")
# Neither pages nor interactions: a page left (PostHog's $pageleave) only tells how long it was read.
LEAVE_EVENTS = ("page_leave", "$pageleave")
# A session's own columns; the stream's dimensions follow, taken from its first event.
SESSION_SCHEMA: dict[str, pl.DataType] = {
    "key": pl.String(), "person": pl.String(), "sid": pl.String(),
    "start": TIME, "start_id": pl.String(), "end": TIME, "end_id": pl.String(),
    "events": pl.UInt32(), "pages": pl.UInt32(), "interactions": pl.UInt32(),
    "entry": pl.String(), "entry_ts": TIME, "entry_id": pl.String(),
    "exit": pl.String(), "exit_ts": TIME, "exit_id": pl.String(),
}  # fmt: skip
_SPAN = 1 << 42  # milliseconds up to the year 2109; times 2**21 keys per merge still fits an Int64
ALIAS_SCHEMA: dict[str, pl.DataType] = {"anon": pl.String(), "user": pl.String(), "seen": TIME}


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """How a stream's events become sessions: the gaps, the fields read, the dimensions kept."""

    gap_ms: int = 30 * 60_000
    max_ms: int = 24 * 3_600_000
    lateness_ms: int = 3_600_000
    dims: tuple[str, ...] = ()  # of the session's first event (source, country, device, ...)
    path: str | None = "path"  # entry and exit pages; None: the stream has no page path

    def schema(self) -> dict[str, pl.DataType]:
        """The columns of a session row."""
        return {**SESSION_SCHEMA, **dict.fromkeys(self.dims, pl.String())}


@dataclass(frozen=True, slots=True)
class SessionState:
    """The open sessions, the aliases seen while they are open, and the watermark (epoch ms)."""

    open: pl.DataFrame
    aliases: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ALIAS_SCHEMA))
    watermark_ms: int = 0

    @classmethod
    def empty(cls, spec: SessionSpec) -> SessionState:
        return cls(pl.DataFrame(schema=spec.schema()))


def pieces(events: pl.DataFrame, spec: SessionSpec) -> pl.DataFrame:
    """One-event sessions of ``events`` (columns ``person``, ``sid``, ``ts``, ``id``, ``event``, the path and dims)."""
    ts, iid = pl.col("ts"), pl.col("id")
    has_path = (pl.col(spec.path).fill_null("") != "") if spec.path else pl.lit(False)
    is_page = pl.col("event").is_in(PAGE_EVENTS).fill_null(False)
    path = pl.col(spec.path) if spec.path else pl.lit(None, pl.String)
    return events.select(
        key=pl.when(pl.col("sid") != "").then(pl.lit("s:") + pl.col("sid")).otherwise(pl.lit("p:") + pl.col("person")),
        person=pl.col("person"),
        sid=pl.col("sid"),
        start=ts,
        start_id=iid,
        end=ts,
        end_id=iid,
        events=pl.lit(1, pl.UInt32),
        pages=is_page.cast(pl.UInt32),
        interactions=(~is_page & ~pl.col("event").is_in(LEAVE_EVENTS).fill_null(False)).cast(pl.UInt32),
        entry=pl.when(has_path).then(path),
        entry_ts=pl.when(has_path).then(ts),
        entry_id=pl.when(has_path).then(iid),
        exit=pl.when(has_path).then(path),
        exit_ts=pl.when(has_path).then(ts),
        exit_id=pl.when(has_path).then(iid),
        **{d: pl.col(d) for d in spec.dims},
    ).cast(spec.schema())  # type: ignore[arg-type]


def _aggregations(spec: SessionSpec) -> list[pl.Expr]:
    # Rows come sorted by (start, start_id): the first row of a group is its first event's.
    firsts = ["key", "person", "sid", "start", "start_id", *spec.dims]
    return [
        *(pl.col(c).first() for c in firsts),
        pl.col("end").max(),
        pl.col("end_id").sort_by("end", "end_id").last(),
        *(pl.col(c).sum() for c in ("events", "pages", "interactions")),
        *(pl.col(c).sort_by("entry_ts", "entry_id", nulls_last=True).first() for c in ("entry", "entry_ts", "entry_id")),
        *(pl.col(c).sort_by("exit_ts", "exit_id", descending=True, nulls_last=True).first() for c in ("exit", "exit_ts", "exit_id")),
    ]


def merge(parts: pl.DataFrame, spec: SessionSpec) -> pl.DataFrame:
    """Sessions of ``parts`` (sessions or pieces): those of a key within ``gap`` of each other joined.

    Sorted by (key, start, start_id), a part opens a session when the latest end before it (a running
    maximum) is over ``gap`` behind its start; client session ids never split. Sessions longer than
    ``max`` are split again, part by part (:func:`_split_long`): rare, so that loop is in Python.
    """
    if parts.is_empty():
        return parts.select(spec.schema().keys())
    ordered = parts.sort("key", "start", "start_id")
    # The latest end before each part of its key: a running maximum of (key's rank, end) packed in one
    # integer, so keys never mix (a window over the key cost ~2.4 us per event, this ~0.1).
    first = pl.col("key") != pl.col("key").shift(1)
    rank = first.fill_null(True).cum_sum().cast(pl.Int64)
    end_ms = pl.col("end").dt.epoch("ms")
    packed = (rank * _SPAN + end_ms).cum_max().shift(1)
    before = packed - rank * _SPAN  # negative: the part before belongs to another key
    late = pl.col("start").dt.epoch("ms") - before > spec.gap_ms
    opens = first.fill_null(True) | ((pl.col("sid") == "") & late)
    ordered = ordered.with_columns(_n=opens.cum_sum())
    span = ordered.group_by("_n").agg(over=(pl.col("end").max() - pl.col("start").min()) > pl.duration(milliseconds=spec.max_ms))
    long = span.filter("over")["_n"]
    if long.len():
        ordered = _split_long(ordered, long, spec)
    merged = ordered.group_by("_n", maintain_order=True).agg(_aggregations(spec))
    return merged.select(spec.schema().keys())


def _split_long(ordered: pl.DataFrame, long: pl.Series, spec: SessionSpec) -> pl.DataFrame:
    """Sessions over ``max`` (without a client id) cut where a part would end over ``max`` after the session's start."""
    mask = pl.col("_n").is_in(long.implode()) & (pl.col("sid") == "")
    rows = ordered.with_row_index("_row").filter(mask).select("_row", "_n", "start", "end")
    cut: list[int] = []
    group, first, last, extra = None, 0, 0, 0
    for _, n, start, end in rows.iter_rows():
        s, e = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        if n != group:
            group, first, last = n, s, e
        elif s - last > spec.gap_ms or e - first > spec.max_ms:
            extra += 1
            first, last = s, e
        else:
            last = max(last, e)
        cut.append(extra)
    sub = pl.Series("_sub", cut, pl.Int64)
    offset = ordered["_n"].max() or 0
    moved = rows.select("_row").with_columns(_sub=sub)
    joined = ordered.with_row_index("_row").join(moved, on="_row", how="left")
    # Each cut opens a fresh group number past the others; rows before the first cut keep theirs.
    renumbered = pl.when(pl.col("_sub").fill_null(0) > 0).then(pl.col("_sub") + offset + 1).otherwise(pl.col("_n"))
    return joined.with_columns(_n=renumbered).drop("_row", "_sub")


def _aliased(frame: pl.DataFrame, aliases: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with anonymous people replaced by the user they were seen with (keys of client ids unchanged)."""
    if aliases.is_empty() or frame.is_empty():
        return frame
    joined = frame.join(aliases.select("anon", "user"), left_on="person", right_on="anon", how="left")
    person = pl.coalesce("user", "person")
    key = pl.when(pl.col("sid") != "").then(pl.col("key")).otherwise(pl.lit("p:") + person)
    return joined.with_columns(person=person, key=key).drop("user")


def advance(state: SessionState, events: pl.DataFrame, spec: SessionSpec, now_ms: int) -> tuple[SessionState, pl.DataFrame]:
    """The state after ``events`` (see :func:`pieces` for their columns), and the signed session rows that changed."""
    schema = spec.schema()
    aliases = _learned(state.aliases, events)
    batch = _aliased(pieces(events, spec), aliases)
    before = state.open.with_row_index("_old")
    rekeyed = _aliased(before, aliases)
    touched = pl.concat([batch["key"], rekeyed.join(before.select("_old", "key"), on=["_old", "key"], how="anti")["key"]]).unique()
    hit = rekeyed["key"].is_in(touched.implode())
    merged = merge(pl.concat([rekeyed.filter(hit).drop("_old"), batch]), spec)
    old = before.filter(pl.col("_old").is_in(rekeyed.filter(hit)["_old"].implode())).drop("_old")
    kept = rekeyed.filter(~hit).drop("_old")
    columns = list(schema)
    gone = old.join(merged, on=columns, how="anti", nulls_equal=True)
    new = merged.join(old, on=columns, how="anti", nulls_equal=True)
    newest = events["ts"].max() if not events.is_empty() else None
    watermark = max(state.watermark_ms, min(_ms(newest), now_ms)) if newest is not None else state.watermark_ms
    horizon = pl.lit(watermark - spec.gap_ms - spec.lateness_ms).cast(pl.Int64).cast(TIME)
    still = pl.concat([kept, merged]).filter(pl.col("end") >= horizon)
    people = still.filter(pl.col("sid") == "")["person"].implode()
    aliases = aliases.filter(pl.col("seen") >= horizon, pl.col("user").is_in(people) | pl.col("anon").is_in(people))
    changes = pl.concat([gone.with_columns(sign=pl.lit(-1, pl.Int8)), new.with_columns(sign=pl.lit(1, pl.Int8))])
    return SessionState(still, aliases, watermark), changes


def _learned(aliases: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """``aliases`` with the (anonymous id, user) pairs of events carrying both; the latest seen wins."""
    if "anon" not in events.columns:
        return aliases
    seen = events.filter(pl.col("anon").is_not_null() & (pl.col("anon") != "") & (pl.col("anon") != pl.col("person")))
    if seen.is_empty():
        return aliases
    pairs = seen.select(anon="anon", user="person", seen="ts").cast(ALIAS_SCHEMA)  # type: ignore[arg-type]
    both = pl.concat([aliases, pairs]).sort("seen", "user")
    return both.group_by("anon", maintain_order=True).agg(pl.col("user").last(), pl.col("seen").last())


def _ms(moment: object) -> int:
    assert isinstance(moment, datetime)
    return int(moment.timestamp() * 1000)


def totals(changes: pl.DataFrame, spec: SessionSpec) -> pl.DataFrame:
    """The sessions a store of ``changes`` holds: the rows whose signs sum to one (the store's own reading)."""
    columns = list(spec.schema())
    summed = changes.group_by(columns).agg(pl.col("sign").sum())
    wrong = summed.filter(~pl.col("sign").is_in([0, 1]))
    assert wrong.is_empty(), f"signs of a session summed to {wrong['sign'].to_list()[:5]}"
    return summed.filter(pl.col("sign") == 1).drop("sign")


def spec_of(stream: StreamPlan) -> SessionSpec:
    """The sessionizer's settings of a stream that declares sessions."""
    plan = stream.sessions
    assert plan is not None, f"stream {stream.name!r} declares no sessions"
    ms = 1000
    return SessionSpec(plan.gap_seconds * ms, plan.max_seconds * ms, plan.lateness_seconds * ms, plan.dims, plan.path)


def session_input(events: pl.DataFrame, stream: StreamPlan) -> pl.DataFrame:
    """The sessionizer's columns of normalized events (:func:`rta.flows.events.normalize`).

    Events with neither a person nor a client session id belong to no visit and are left out; a
    stream without an ``event`` dimension counts every event as a page view.
    """
    spec = spec_of(stream)
    person = pl.col(stream.user).fill_null("") if stream.user else pl.lit("")
    sid = pl.col("_sid").fill_null("") if "_sid" in events.columns else pl.lit("")
    anon = pl.col("_anon") if "_anon" in events.columns else pl.lit(None, pl.String)
    event = pl.col("event") if "event" in events.columns else pl.lit(PAGE_EVENTS[0])
    iid = pl.col(stream.insert_id).fill_null("") if stream.insert_id else pl.lit("")
    columns = [
        person.alias("person"), anon.cast(pl.String).alias("anon"), sid.alias("sid"), pl.col(stream.time).cast(TIME).alias("ts"),
        iid.alias("id"), event.alias("event"), *(pl.col(d) for d in (*spec.dims, *([spec.path] if spec.path else []))),
    ]  # fmt: skip
    return events.select(columns).filter((pl.col("person") != "") | (pl.col("sid") != ""))
