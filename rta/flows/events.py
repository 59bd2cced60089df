"""Events to one normalized Polars frame per batch: typed fields, UTC time, outcome tallies.

Fields are read from the top level of an event or from its ``properties``, with the
Segment/Mixpanel spellings of ids accepted (``userId``, ``anonymousId``, ``messageId``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from rta.compiler.plan import StreamPlan
from rta.contract.properties import LINE_FIELDS
from rta.contract.segment import EVENT_NAMES, PAGE_PARTS, TRAFFIC_DIMS, line_schema, utm_field
from rta.flows.enrich import AGENT_PARTS, agent, country_of, map_unique
from rta.flows.iso_time import parse_iso8601
from rta.flows.partials import MINUTE
from rta.flows.properties import kept_columns, line_properties
from rta.flows.referrers import traffic

SESSION_ID = "$session_id"
USER_ALIASES = ("userId", "anonymous_id", "anonymousId", "distinct_id")
INSERT_ID_ALIASES = ("messageId", "message_id", "$insert_id")
TIME = pl.Datetime("ms", "UTC")
OUTCOMES = ("accepted", "late", "future", "invalid", "quarantined")  # quarantined: lines of the log the flow could not read


@dataclass(frozen=True, slots=True)
class Normalized:
    """Accepted events (normalized, with ``minute``) and how many events had each outcome."""

    events: pl.DataFrame
    outcomes: dict[str, int]
    errors: tuple[str, ...] = ()


def _user_fields(stream: StreamPlan) -> tuple[str, ...]:
    return (stream.user, *USER_ALIASES) if stream.user else ()


def _insert_fields(stream: StreamPlan) -> tuple[str, ...]:
    return (stream.insert_id, *INSERT_ID_ALIASES) if stream.insert_id else ()


_S = pl.String()


def json_schema(stream: StreamPlan) -> dict[str, pl.DataType]:
    """The schema JSON events are read with: flat events, Segment messages, the log's lines; unknown keys are ignored."""
    declared: dict[str, pl.DataType] = {d: pl.String() for d in stream.dims}
    declared |= {m: pl.Float64() for m in stream.measures}
    schema: dict[str, pl.DataType] = {stream.time: pl.String(), **declared}
    for name in (*_user_fields(stream), *_insert_fields(stream)):
        schema[name] = pl.String()
    lines = line_schema(stream)
    properties = lines.pop("properties")
    assert isinstance(properties, pl.Struct)
    extra = {SESSION_ID: pl.String()} if stream.sessions else {}  # PostHog's session id, top level or in properties
    schema |= extra
    schema["properties"] = pl.Struct({**declared, **{f.name: f.dtype for f in properties.fields}, **extra})
    for name, dtype in lines.items():
        schema.setdefault(name, dtype)
    return schema


def _field(frame: pl.DataFrame, *path: str) -> pl.Series | None:
    """The string field at ``path`` (a column, then struct fields), if the frame has it: nested
    fields no line had are not read (see :func:`_present`), and other sources may type them otherwise."""
    dtype: object = frame.schema.get(path[0])
    for name in path[1:]:
        dtype = next((f.dtype for f in dtype.fields if f.name == name), None) if isinstance(dtype, pl.Struct) else None
    if dtype != _S:
        return None
    column = frame[path[0]]
    for name in path[1:]:
        column = column.struct.field(name)
    return column


def _implied(frame: pl.DataFrame, dim: str, missing: pl.Series, memo: dict[str, pl.DataFrame]) -> pl.Expr | None:
    """Where a Segment message implies ``dim``: its type, context or UTM properties.

    User agents and addresses are looked up only for the ``missing`` rows (not stated).
    """
    if dim == "event":
        kind = _field(frame, "type")
        return None if kind is None else pl.lit(kind.replace_strict(list(EVENT_NAMES), list(EVENT_NAMES.values()), default=None))
    part = "name" if dim == "campaign" else dim
    found: list[pl.Series | None] = []
    if dim in TRAFFIC_DIMS:
        if "traffic" not in memo:  # source, medium and referrer host come from one derivation
            memo["traffic"] = _traffic(frame)
        found = [memo["traffic"][dim]]
    elif (utm := utm_field(dim)) is not None:
        found = [_field(frame, "context", "campaign", part), _field(frame, "properties", utm)]
    elif dim in PAGE_PARTS:
        found = [_field(frame, "context", "page", dim)]
    elif dim == "locale":
        found = [_field(frame, "context", "locale")]
    elif dim in AGENT_PARTS and (agents := _field(frame, "context", "userAgent")) is not None:
        index = AGENT_PARTS.index(dim)
        found = [map_unique(agents, lambda ua: agent(ua)[index], missing)]
    elif dim == "country":
        located = _field(frame, "context", "location", "country")
        ips = [ip for ip in (_field(frame, "context", "ip"), _field(frame, "_ip")) if ip is not None]
        looked_up = missing if located is None else missing & located.is_null()
        address = pl.select(pl.coalesce([pl.lit(ip) for ip in ips])).to_series() if ips else None
        found = [located, None if address is None else map_unique(address, country_of, looked_up)]
    sources = [pl.lit(series) for series in found if series is not None]
    return pl.coalesce(sources) if sources else None


def _traffic(frame: pl.DataFrame) -> pl.DataFrame:
    """Source, medium and referrer host of each event (:func:`rta.flows.referrers.traffic`)."""
    page = ("context", "page")
    return traffic(
        _field(frame, *page, "referrer"),
        _field(frame, *page, "url"),
        search=_field(frame, *page, "search"),
        utm_source=[_field(frame, "context", "campaign", "source"), _field(frame, "properties", "utm_source")],
        utm_medium=[_field(frame, "context", "campaign", "medium"), _field(frame, "properties", "utm_medium")],
        height=frame.height,
    )


def _dimension(frame: pl.DataFrame, dim: str, memo: dict[str, pl.DataFrame]) -> pl.Expr:
    stated = _coalesce(frame, (dim,), pl.String(), dim)
    if dim == "event":  # a page call is a page view whatever its properties say
        implied = _implied(frame, dim, pl.Series(dtype=pl.Boolean), memo)
        return stated if implied is None else pl.coalesce(implied, stated)
    missing = frame.with_columns(_missing=stated.is_null())["_missing"]  # a literal (no source of it) spans every row too
    if not missing.any():  # the usual flat event: nothing to look up
        return stated
    implied = _implied(frame, dim, missing, memo)
    return stated if implied is None else pl.coalesce(stated, implied)


def _session_id(frame: pl.DataFrame) -> pl.Expr:
    """The client's session id (``context.sessionId``, else ``$session_id``), ``""`` when none (rta/flows/sessions.py)."""
    found = [_field(frame, "context", "sessionId"), _field(frame, SESSION_ID), _field(frame, "properties", SESSION_ID)]
    sources = [pl.lit(f) for f in found if f is not None]
    return (pl.coalesce(sources) if sources else pl.lit(None, pl.String)).fill_null("").alias(SESSION_COLUMN)


SESSION_COLUMN = "_sid"


def _present(schema: dict[str, pl.DataType], data: bytes) -> dict[str, pl.DataType]:
    """``schema`` without the structs (``properties``, ``context`` and its parts) no line of ``data`` has.

    Polars reads every declared field, present or not, and nested ones cost the most: flat events
    parse ~40% faster without ``properties`` and ``context``, Segment messages ~15% faster without
    the context parts they lack. Leaves are all kept: each absent name costs a scan of the chunk
    (~0.1 us per event), more than reading it as null. A key spelled with escapes
    (``"\\u0070roperties"``) would hide from the search, so any escaped ASCII character keeps them all.
    Flat events, the common case, skip the searches: no brace but those opening lines means no
    line has a nested object, however its keys are spelled.
    """
    if _flat(data):
        return {name: dtype for name, dtype in schema.items() if not isinstance(dtype, pl.Struct)}
    if b"\\u00" in data and _ESCAPED_ASCII.search(data):
        return schema
    return _unlisted(_pruned(schema, data), data)


def _unlisted(schema: dict[str, pl.DataType], data: bytes) -> dict[str, pl.DataType]:
    """``schema`` without the line's property texts and ids no line of ``data`` has.

    An absent field costs a scan of the chunk; one search for its name is far cheaper.
    """
    for name in _LISTED:
        if b'"%s"' % name.encode() not in data:
            schema.pop(name, None)
    return schema


_LISTED = (*LINE_FIELDS, "previousId")


def _flat(data: bytes) -> bool:
    """Whether every ``{`` in ``data`` opens a line (one scan, ~4x cheaper than searching for three names)."""
    chars = np.frombuffer(data, np.uint8)
    braces = np.flatnonzero(chars == ord("{"))
    return bool((chars[braces[braces > 0] - 1] == ord("\n")).all())


_ESCAPED_ASCII = re.compile(rb"\\u00[2-7]")


def _pruned(fields: Mapping[str, Any], data: bytes) -> dict[str, pl.DataType]:
    kept: dict[str, pl.DataType] = {}
    for name, dtype in fields.items():
        if not isinstance(dtype, pl.Struct):
            kept[name] = dtype
        elif b'"%s"' % name.encode() in data and (inner := _pruned({f.name: f.dtype for f in dtype.fields}, data)):
            kept[name] = pl.Struct(inner)
    return kept


def read_json_lines(
    data: bytes, stream: StreamPlan, *, properties: bool = False, origin: str | None = None, first_line: int = 1
) -> tuple[pl.DataFrame, int, tuple[str, ...]]:
    """Parse JSON lines; bad lines are isolated by bisection and counted, never fatal.

    Returns the frame of good lines, the number of bad lines and a few of their errors. With
    ``properties``, lines the collect API did not write keep their undeclared properties too, at
    about 10 us per event instead of 1 (:func:`rta.flows.properties.line_properties`); the API's
    lines carry theirs already. ``origin`` (a file's name) and ``first_line`` (the number of the data's first line in it)
    name where a bad line is: ``events.jsonl line 1,204``.
    """
    frame, bad = read_lines(data, stream)
    if properties and frame.height and b'"_t"' not in data:
        frame = frame.with_columns(line_properties(data, [i for i, _, _ in bad], stream))
    where = (lambda i: f"line {i + 1} of the batch") if origin is None else (lambda i: f"{origin} line {first_line + i:,}")
    errors = tuple(f"{where(i)}: {reason}: {line[:120]!r}" for i, line, reason in bad[:5])
    return frame, len(bad), errors


def read_lines(data: bytes, stream: StreamPlan) -> tuple[pl.DataFrame, list[tuple[int, bytes, str]]]:
    """The frame of the good lines of ``data``, and each bad line (its index among the lines, its bytes, the error)."""
    schema = _present(json_schema(stream), data)
    try:
        return pl.read_ndjson(io.BytesIO(data), schema=schema), []
    except pl.exceptions.PolarsError:
        pass
    lines = [line for line in data.split(b"\n") if line.strip()]
    frames: list[pl.DataFrame] = []
    bad: list[tuple[int, bytes, str]] = []
    pending = [(0, len(lines))]
    while pending:
        lo, hi = pending.pop()
        try:
            frames.append(pl.read_ndjson(io.BytesIO(b"\n".join(lines[lo:hi])), schema=schema))
        except pl.exceptions.PolarsError as err:
            if hi - lo == 1:
                bad.append((lo, lines[lo], str(err).splitlines()[0]))
            else:
                mid = (lo + hi) // 2
                pending += [(mid, hi), (lo, mid)]
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
    return frame, sorted(bad)


def _coalesce(frame: pl.DataFrame, names: tuple[str, ...], dtype: pl.DataType, struct: str | None = None) -> pl.Expr:
    """The first non-null of top-level ``names``, then ``properties.<names[0]>``."""
    sources = [pl.col(n).cast(dtype, strict=False) for n in names if n in frame.columns]
    props = frame.schema.get("properties")
    if struct and isinstance(props, pl.Struct) and struct in {f.name for f in props.fields}:
        sources.append(pl.col("properties").struct.field(struct).cast(dtype, strict=False))
    return pl.coalesce(sources) if sources else pl.lit(None, dtype)


def _parse_time(column: pl.Series) -> pl.Series:
    """Any of ISO 8601 strings, epoch seconds or milliseconds, or datetimes, as UTC milliseconds."""
    dtype = column.dtype
    if isinstance(dtype, pl.Datetime):
        zoned = column.dt.replace_time_zone("UTC") if dtype.time_zone is None else column.dt.convert_time_zone("UTC")
        return zoned.cast(TIME)
    if dtype.is_numeric():
        return _epoch(column.cast(pl.Float64))
    text = column.cast(pl.String)
    fast = parse_iso8601(text)
    if fast is not None:
        return fast
    parsed = text.str.to_datetime(time_unit="ms", time_zone="UTC", strict=False)
    # Formats are inferred from the first value; re-parse what is left in case formats are mixed.
    for _ in range(2):
        missing = parsed.is_null() & text.is_not_null()
        if not missing.any():
            break
        retry = text.filter(missing).str.to_datetime(time_unit="ms", time_zone="UTC", strict=False)
        parsed = parsed.scatter(missing.arg_true(), retry)
    numeric = _epoch(text.cast(pl.Float64, strict=False))
    return parsed.fill_null(numeric).alias(column.name)


def _epoch(values: pl.Series) -> pl.Series:
    millis = pl.select(pl.when(values.abs() < 1e11).then(values * 1000).otherwise(values)).to_series()
    return millis.cast(pl.Int64).cast(TIME)


def _settled(frame: pl.DataFrame) -> pl.Series | None:
    """The event times the collect API settled (``_t``: RFC 3339, in the layouts msgspec writes; ISO 8601 in logs of earlier versions)."""
    if "_t" not in frame.columns or frame.schema["_t"] != _S:
        return None
    settled = frame["_t"]
    if settled.null_count() == settled.len():
        return None
    parsed = _parse_time(settled)  # vectorized when the layouts repeat, as the API's lines do
    return parsed.cast(TIME).alias("_t")


def normalize(frame: pl.DataFrame, stream: StreamPlan, now: datetime, *, invalid: int = 0) -> Normalized:
    """Typed, normalized events of ``frame``; events outside the accepted window are tallied.

    ``now`` decides lateness: events older than ``max_lateness`` or ahead by more than
    ``max_future`` are rejected (and counted), others are counted in their own minute. Events
    the collect API settled (``_t``) were judged against the same window when it acknowledged
    them, and are counted whenever they are read: an acknowledged event is never late.
    """
    settled = _settled(frame)
    stated = stream.time in frame.columns and frame.schema[stream.time] != pl.Null
    time_column = pl.col(stream.time) if stated else pl.lit(None, pl.String).alias(stream.time)
    columns = [time_column]
    memo: dict[str, pl.DataFrame] = {}
    columns += [_dimension(frame, d, memo).fill_null("").alias(d) for d in stream.dims]
    columns += [_coalesce(frame, (m,), pl.Float64(), m).alias(m) for m in stream.measures]
    if stream.user:
        columns.append(_coalesce(frame, _user_fields(stream), pl.String()).alias(stream.user))
    if stream.insert_id:
        columns.append(_coalesce(frame, ("_id", *_insert_fields(stream)), pl.String()).fill_null("").alias(stream.insert_id))
    columns += kept_columns(frame, stream)
    if stream.sessions:
        columns.append(_session_id(frame))
    typed = frame.select(columns)
    if settled is not None and not settled.null_count():  # lines of the log: no time to parse, none to judge
        typed = typed.with_columns(settled.alias(stream.time))
        accepted = typed
        counts = dict.fromkeys(OUTCOMES, 0)
        counts["invalid"] += invalid
        counts["accepted"] += typed.height
        return Normalized(accepted.with_columns(pl.col(stream.time).dt.truncate("1m").alias(MINUTE)), counts)
    parsed = _parse_time(typed[stream.time]) if stated else pl.Series(stream.time, [None] * typed.height, TIME)
    judged = pl.lit(True)
    if settled is not None:
        judged = pl.lit(settled.is_null())
        parsed = settled.fill_null(parsed).alias(stream.time)
    typed = typed.with_columns(parsed)
    ts = pl.col(stream.time)
    now_ms = int(now.timestamp() * 1000)
    oldest = pl.lit(now_ms - stream.max_lateness_seconds * 1000).cast(pl.Int64).cast(TIME)
    newest = pl.lit(now_ms + stream.max_future_seconds * 1000).cast(pl.Int64).cast(TIME)
    outcome = (
        pl.when(ts.is_null())
        .then(pl.lit("invalid"))
        .when(judged & (ts < oldest))
        .then(pl.lit("late"))
        .when(judged & (ts > newest))
        .then(pl.lit("future"))
        .otherwise(pl.lit("accepted"))
    )
    counts = dict.fromkeys(OUTCOMES, 0)
    counts["invalid"] += invalid
    times = typed[stream.time]
    low, high = times.min(), times.max()
    window = (now_ms - stream.max_lateness_seconds * 1000, now_ms + stream.max_future_seconds * 1000)
    if not times.null_count() and low is not None and high is not None and _ms(low) >= window[0] and _ms(high) <= window[1]:
        counts["accepted"] += typed.height  # the usual batch: every event in the window, no row-by-row labels
        accepted = typed
    else:
        labelled = typed.with_columns(outcome.alias("_outcome"))
        for name, n in labelled.group_by("_outcome").len().iter_rows():
            counts[name] += n
        accepted = labelled.filter(pl.col("_outcome") == "accepted").drop("_outcome")
    accepted = accepted.with_columns(ts.dt.truncate("1m").alias(MINUTE))
    return Normalized(accepted, counts)


def _ms(moment: object) -> int:
    assert isinstance(moment, datetime)
    return int(moment.timestamp() * 1000)
