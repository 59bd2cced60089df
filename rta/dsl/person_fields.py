"""What every per-person definition (funnels, retention, paths) checks alike: its stream, fields, filters, breakdown.

They are answered from raw events per person, so the stream must keep raw events and name the
user; their filters and breakdowns may read any declared field, any property (``prop.<key>``) and
any trait of the person (``person.<trait>``).
"""

from __future__ import annotations

from collections.abc import Sequence

from rta.dsl.context import latest
from rta.dsl.expr import Expr
from rta.dsl.filter_kinds import check_filter_kinds
from rta.dsl.stream import Stream
from rta.errors import DefinitionError, did_you_mean

#: Names a per-person definition may filter and split by besides the stream's fields: any property, any trait of the person.
RAW_PREFIXES = ("prop.", "person.")


def _raw_name(name: str) -> bool:
    return any(name.startswith(p) and len(name) > len(p) for p in RAW_PREFIXES)


def person_stream(stream: Stream | None, owner: str, what: str) -> Stream:
    """``stream`` (or the latest declared one) if it keeps raw events and names the user, else raise."""
    source = stream if stream is not None else latest(Stream)
    if not isinstance(source, Stream):
        msg = f"{owner}: no stream to read from; declare a stream first in the same file or pass stream=<your stream>"
        raise DefinitionError(msg)
    if source.keep_raw is None or source.user is None:
        missing = (
            "keeps no raw events (declare it with keep_raw='30d')" if source.keep_raw is None else "declares no user field (user='user_id')"
        )
        msg = f"{owner}: {what} counted per person from raw events, but stream {source.name!r} {missing}"
        raise DefinitionError(msg)
    return source


def check_person_field(stream: Stream, name: object, owner: str) -> str:
    """``name`` if a per-person answer over ``stream`` can read it (a field, ``prop.<key>``, ``person.<trait>``), else raise."""
    if not isinstance(name, str):
        msg = f"{owner}: expected a field name, got {name!r}"
        raise DefinitionError(msg)
    if _raw_name(name) or name in stream.fields:
        return name
    msg = (
        f"{owner}: stream {stream.name!r} has no field {name!r}; {did_you_mean(name, list(stream.fields))}; "
        "undeclared properties are prop.<key> and people's traits person.<trait>"
    )
    raise DefinitionError(msg)


def check_person_filter(stream: Stream, node: object, owner: str) -> Expr:
    """A filter a per-person answer can use: an expression over known fields whose values suit their kinds."""
    if not isinstance(node, Expr):
        msg = f"{owner}: expected a filter such as col('event') == 'purchase', got {node!r}"
        raise DefinitionError(msg)
    for name in sorted(node.fields()):
        check_person_field(stream, name, owner)
    check_filter_kinds(node, stream.fields, owner)
    return node


def check_by(stream: Stream, by: Sequence[str] | str, owner: str) -> tuple[str, ...]:
    """A breakdown: readable fields, none repeated."""
    split = (by,) if isinstance(by, str) else tuple(by)
    for field in split:
        check_person_field(stream, field, f"{owner} by=")
    if len(set(split)) != len(split):
        msg = f"{owner}: by= repeats a field: {list(split)!r}"
        raise DefinitionError(msg)
    return split
