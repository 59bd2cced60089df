"""Undeclared properties through the flow: the log's lists in, the raw table's maps out.

The collect API writes every undeclared property as parallel lists in the line (``_pk``/``_pv``,
``_nk``/``_nv``; :mod:`rta.contract.properties`); the flow passes them along untouched and turns
them into the raw table's ``props``/``props_num`` maps at the last moment, in Arrow, from the
lists' own buffers: no value is looked at. Frames loaded with ``ws.load`` carry properties as
extra columns; they get the same lists here.
"""

from __future__ import annotations

import msgspec
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from rta.compiler.plan import StreamPlan
from rta.compiler.properties import PROPS, PROPS_NUM
from rta.contract.properties import LINE_FIELDS, PropertyError, flatten

# What normalize() keeps beside the stream's columns: the property and trait lists, and for
# people the call's type, its anonymous id and an alias's previous id.
PEOPLE_FIELDS = {"_type": "type", "_anon": "anonymousId", "_prev": "previousId"}
KEPT = (*LINE_FIELDS, *PEOPLE_FIELDS)
_DECODE = msgspec.json.Decoder().decode
_TEXTS = pl.List(pl.String())
_NUMBERS = pl.List(pl.Float64())
_DTYPES: dict[str, pl.DataType] = {f: _NUMBERS if f == "_nv" else _TEXTS for f in LINE_FIELDS} | dict.fromkeys(PEOPLE_FIELDS, pl.String())
# Names of a flat event or a frame that are not properties: ids, times, the Segment envelope.
_ENVELOPE = frozenset({"type", "event", "name", "userId", "anonymousId", "previousId", "messageId", "message_id", "$insert_id",
                       "anonymous_id", "distinct_id", "timestamp", "originalTimestamp", "sentAt", "receivedAt", "properties",
                       "context", "traits", "integrations", "_t", "_id", "_ip"})  # fmt: skip


def kept_columns(frame: pl.DataFrame, stream: StreamPlan) -> list[pl.Expr]:
    """The expressions normalize() adds: the line's lists (or a frame's extra columns as lists), the people fields."""
    columns = []
    for name, dtype in _DTYPES.items():
        source = PEOPLE_FIELDS.get(name, name)
        present = source in frame.columns and frame.schema[source] == dtype
        columns.append((pl.col(source) if present else pl.lit(None, dtype)).alias(name))
    if "_pk" not in frame.columns:
        extra = [c for c in frame.columns if c not in _ENVELOPE and c not in _declared(stream) and not c.startswith("_")]
        if extra:
            columns[:4] = _frame_lists(frame, extra)
    return columns


def _declared(stream: StreamPlan) -> set[str]:
    return {stream.time, *stream.dims, *stream.measures, *(f for f in (stream.user, stream.insert_id) if f)}


def _frame_lists(frame: pl.DataFrame, extra: list[str]) -> list[pl.Expr]:
    """A frame's extra columns as the line's lists: texts of every non-null value, numbers of the numeric ones."""
    texts, numbers = [], []
    for name in extra:
        dtype = frame.schema[name]
        value = pl.col(name)
        if dtype == pl.Boolean or dtype.is_numeric() or dtype == pl.String:  # booleans as true/false
            text = value.cast(pl.String)
        else:
            text = value.cast(pl.String, strict=False)
        texts.append((name, text))
        if dtype.is_numeric():
            numbers.append((name, value.cast(pl.Float64)))
    keys = [pl.when(text.is_not_null()).then(pl.lit(name)) for name, text in texts]
    number_keys = [pl.when(number.is_not_null() & number.is_finite()).then(pl.lit(name)) for name, number in numbers]
    finite = [pl.when(number.is_finite()).then(number) for _, number in numbers]
    return [
        pl.concat_list(keys).list.drop_nulls().alias("_pk"),
        pl.concat_list([t for _, t in texts]).list.drop_nulls().alias("_pv"),
        (pl.concat_list(number_keys).list.drop_nulls() if numbers else pl.lit([], _TEXTS)).alias("_nk"),
        (pl.concat_list(finite).list.drop_nulls() if numbers else pl.lit([], _NUMBERS)).alias("_nv"),
    ]


def line_lists(data: bytes, bad: list[int], stream: StreamPlan) -> pl.DataFrame:
    """The property and trait lists of JSON lines the collect API did not write (``rta load``, a producer's own topic).

    Their keys are unknown until each line is read, so each good line is decoded once more (about
    1-2 us per event, for lines of files: the API's lines carry their lists already). A flat
    event's extra top-level fields are properties too, as a loaded frame's extra columns are.
    """
    skip = frozenset(_declared(stream)) | _ENVELOPE
    declared = frozenset((*stream.dims, *stream.measures))
    rows: list[tuple[list[str], list[str], list[str], list[float], list[str], list[str]]] = []
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
            rows.append(([], [], [], [], [], []))
            continue
        given = event.get("properties")
        extra = {k: v for k, v in event.items() if k not in skip and not k.startswith("_")}
        context, own = event.get("context"), event.get("traits")
        shared = context.get("traits") if isinstance(context, dict) else None
        traits = {**(shared if isinstance(shared, dict) else {}), **(own if isinstance(own, dict) else {})}
        try:
            flat = flatten({**extra, **given} if isinstance(given, dict) else extra, declared)
            people = flatten(traits, what="traits")
        except PropertyError:  # a file's line has no one to answer: its declared fields still count
            rows.append(([], [], [], [], [], []))
            continue
        rows.append((flat.keys, flat.texts, flat.number_keys, flat.numbers, people.keys, people.texts))
    return pl.DataFrame(rows, schema={f: _DTYPES[f] for f in LINE_FIELDS}, orient="row")


def raw_frame(events: pl.DataFrame, stream: StreamPlan) -> pl.DataFrame:
    """The raw table's columns of normalized events, the property lists still as lists (see :func:`raw_arrow`)."""
    columns = [stream.time, *(f for f in (stream.insert_id, stream.user) if f), *stream.dims, *stream.measures]
    return events.select(*columns, "_pk", "_pv", "_nk", "_nv")


def raw_arrow(frame: pl.DataFrame) -> pa.Table:
    """Rows for the raw table: the lists become the ``props``/``props_num`` maps, sharing their buffers."""
    table = frame.to_arrow()
    if "_pk" not in table.column_names:
        return table
    props = _map(table["_pk"], table["_pv"])
    numbers = _map(table["_nk"], table["_nv"])
    kept = table.drop_columns(["_pk", "_pv", "_nk", "_nv"])
    return kept.append_column(PROPS, props).append_column(PROPS_NUM, numbers)


def _map(keys: pa.ChunkedArray, values: pa.ChunkedArray) -> pa.Array:
    k, v = _list(keys), _list(values)
    start = k.offsets[0]
    offsets = pc.subtract(k.offsets, start) if start.as_py() else k.offsets
    return pa.MapArray.from_arrays(offsets, k.flatten(), v.flatten())


def _list(column: pa.ChunkedArray) -> pa.ListArray:
    """One list array with 32-bit offsets and empty lists for nulls (a map has no null entry)."""
    array = column.combine_chunks()
    item = array.type.value_type
    if pa.types.is_large_string(item):
        item = pa.string()
    array = array.cast(pa.list_(item))
    if array.null_count:
        array = pc.fill_null(array, pa.scalar([], array.type))
    return array
