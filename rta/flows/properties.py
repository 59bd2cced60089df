"""Undeclared properties through the flow: the line's JSON texts in, the same texts out to the raw table.

The collect API writes every undeclared property into the line as JSON objects written as text
(``_p`` paths -> texts, ``_n`` paths -> numbers, ``_tr`` traits; :mod:`rta.contract.properties`).
The flow reads each as one string and passes it along untouched; ClickHouse parses ``_p``/``_n``
into the raw table's ``props``/``props_num`` maps at insert (:func:`rta.compiler.ddl.raw_table`):
no value is looked at in Python. Frames loaded with ``ws.load`` carry properties as extra columns,
and JSON lines the API did not write carry them wherever they like: both get the same texts here.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import polars as pl
import pyarrow as pa

from rta.compiler.plan import StreamPlan
from rta.contract.properties import LINE_FIELDS, PROPS_JSON, PROPS_NUM_JSON, PropertyError, flatten, line_texts

# What normalize() keeps beside the stream's columns: the property and trait texts, and for
# people the call's type, its anonymous id and an alias's previous id.
PEOPLE_FIELDS = {"_type": "type", "_anon": "anonymousId", "_prev": "previousId"}
KEPT = (*LINE_FIELDS, *PEOPLE_FIELDS)
_DECODE = msgspec.json.Decoder().decode
_DTYPES: dict[str, pl.DataType] = dict.fromkeys(KEPT, pl.String())
# Names of a flat event or a frame that are not properties: ids, times, the Segment envelope.
_ENVELOPE = frozenset({"type", "event", "name", "userId", "anonymousId", "previousId", "messageId", "message_id", "$insert_id",
                       "anonymous_id", "distinct_id", "timestamp", "originalTimestamp", "sentAt", "receivedAt", "properties",
                       "context", "traits", "integrations", "_t", "_id", "_ip"})  # fmt: skip


def kept_columns(frame: pl.DataFrame, stream: StreamPlan) -> list[pl.Expr]:
    """The expressions normalize() adds: the line's JSON texts (or a frame's extra columns as such texts), the people fields."""
    columns: dict[str, pl.Expr] = {}
    for name, dtype in _DTYPES.items():
        source = PEOPLE_FIELDS.get(name, name)
        present = source in frame.columns and frame.schema[source] == dtype
        columns[name] = (pl.col(source) if present else pl.lit(None, dtype)).alias(name)
    if PROPS_JSON not in frame.columns:
        extra = [c for c in frame.columns if c not in _ENVELOPE and c not in _declared(stream) and not c.startswith("_")]
        if extra:
            columns |= _frame_texts(frame, extra)
    return list(columns.values())


def _declared(stream: StreamPlan) -> set[str]:
    return {stream.time, *stream.dims, *stream.measures, *(f for f in (stream.user, stream.insert_id) if f)}


def _frame_texts(frame: pl.DataFrame, extra: list[str]) -> dict[str, pl.Expr]:
    """A frame's extra columns as the line's ``_p``/``_n``: the text of every non-null value, the number of every finite numeric one."""
    texts, numbers = [], []
    for name in extra:
        dtype = frame.schema[name]
        value = pl.col(name)
        if dtype == pl.Boolean or dtype.is_numeric() or dtype == pl.String:  # booleans as true/false
            text = value.cast(pl.String)
        else:
            text = value.cast(pl.String, strict=False)
        key = msgspec.json.encode(name).decode() + ":"
        texts.append(pl.when(text.is_not_null()).then(pl.lit(key) + _json_string(text)))
        if dtype.is_numeric():
            number = value.cast(pl.Float64)
            numbers.append(pl.when(number.is_finite()).then(pl.lit(key) + number.cast(pl.String)))  # a number's text is JSON
    return {PROPS_JSON: _object(texts).alias(PROPS_JSON), PROPS_NUM_JSON: _object(numbers).alias(PROPS_NUM_JSON)}


def _json_string(text: pl.Expr) -> pl.Expr:
    """``text`` as a JSON string literal, escapes and all (Polars' own JSON writer, without the object around it)."""
    return pl.struct(v=text).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")


def _object(members: Sequence[pl.Expr]) -> pl.Expr:
    """``{member,...}`` of the non-null members, null when there are none (the line leaves an empty object out)."""
    if not members:
        return pl.lit(None, pl.String)
    joined = pl.concat_str(members, separator=",", ignore_nulls=True)
    return pl.when(joined != "").then(pl.lit("{") + joined + pl.lit("}"))


def line_properties(data: bytes, bad: list[int], stream: StreamPlan) -> pl.DataFrame:
    """The property and trait texts of JSON lines the collect API did not write (``rta load``, a producer's own topic).

    Their keys are unknown until each line is read, so each good line is decoded once more (about
    1-2 us per event, for lines of files: the API's lines carry their texts already). A flat
    event's extra top-level fields are properties too, as a loaded frame's extra columns are.
    """
    skip = frozenset(_declared(stream)) | _ENVELOPE
    declared = frozenset((*stream.dims, *stream.measures))
    rows: list[tuple[str | None, str | None, str | None]] = []
    none = (None, None, None)
    lines = [line for line in data.split(b"\n") if line.strip()]
    dropped = set(bad)
    for index, line in enumerate(lines):
        if index in dropped:
            continue
        try:
            event = _DECODE(line)
        except (msgspec.DecodeError, ValueError):  # read by Polars (a big number), not by msgspec: no properties kept
            event = None
        if not isinstance(event, dict):
            rows.append(none)
            continue
        given = event.get("properties")
        extra = {k: v for k, v in event.items() if k not in skip and not k.startswith("_")}
        context, own = event.get("context"), event.get("traits")
        shared = context.get("traits") if isinstance(context, dict) else None
        traits = {**(shared if isinstance(shared, dict) else {}), **(own if isinstance(own, dict) else {})}
        try:
            texts = line_texts(flatten({**extra, **given} if isinstance(given, dict) else extra, declared), flatten(traits, what="traits"))
        except PropertyError:  # a file's line has no one to answer: its declared fields still count
            texts = none
        rows.append(texts)
    return pl.DataFrame(rows, schema=dict.fromkeys(LINE_FIELDS, pl.String()), orient="row")


def raw_frame(events: pl.DataFrame, stream: StreamPlan) -> pl.DataFrame:
    """The raw table's columns of normalized events, the properties as the line's JSON texts (see :func:`raw_arrow`)."""
    columns = [stream.time, *(f for f in (stream.insert_id, stream.user) if f), *stream.dims, *stream.measures]
    return events.select(*columns, PROPS_JSON, PROPS_NUM_JSON)


def raw_arrow(frame: pl.DataFrame) -> pa.Table:
    """Rows for the raw table: ``_p``/``_n`` go to its EPHEMERAL columns, which the maps' DEFAULTs parse."""
    return frame.to_arrow()
