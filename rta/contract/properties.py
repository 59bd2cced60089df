"""Schema-free properties: how the collect API flattens what a client sends, and writes it for the flow.

A stream declares the dimensions and measures its rollups read; everything else a client sends in
``properties`` (and, for people, in ``traits``) is kept too, flattened to dotted paths:

    {"plan": "pro", "cart": {"items": 3, "coupon": null}, "tags": ["a", "b"], "beta": true}
    -> plan = "pro", cart.items = "3" (and the number 3), tags = '["a","b"]', beta = "true"

Strings stay as they are; numbers are written as JSON writes them and kept as numbers too;
booleans are ``true``/``false``; lists (and objects nested deeper than :data:`MAX_DEPTH`) are
their compact JSON; nulls and empty objects are left out. The log line carries them as JSON
objects written as text, one string each (:data:`LINE_FIELDS`: ``_p`` every path and its text,
``_n`` the numeric paths and their numbers, ``_tr`` the traits): the flow reads each as one
string, passes it along untouched, and ClickHouse parses it into the raw table's maps at insert
(:mod:`rta.compiler.properties`; docs/architecture.md, "Schema-free properties").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from rta.compiler.properties import (
    MAX_MATERIALIZED,
    PERSON_PREFIX,
    PROP_PREFIX,
    PROPS,
    PROPS_JSON,
    PROPS_NUM,
    PROPS_NUM_JSON,
    number_column,
    number_value,
    text_column,
    text_value,
)

__all__ = [
    "EMPTY",
    "LINE_FIELDS",
    "MAX_DEPTH",
    "MAX_KEY",
    "MAX_MATERIALIZED",
    "MAX_PROPERTIES",
    "PERSON_PREFIX",
    "PROPS",
    "PROPS_JSON",
    "PROPS_NUM",
    "PROPS_NUM_JSON",
    "PROP_PREFIX",
    "TRAITS_JSON",
    "Flat",
    "PropertyError",
    "flatten",
    "line_texts",
    "number_column",
    "number_value",
    "text_column",
    "text_value",
]

MAX_PROPERTIES = 1_000  # flattened paths per event
MAX_KEY = 200  # characters of a flattened path
MAX_DEPTH = 8  # levels of objects flattened; deeper ones are kept as their JSON text
# The log line's objects (each a JSON text): property paths -> texts, numeric paths -> numbers, trait paths -> texts.
# A JSON string, not a nested object: Polars reads a string exactly and fast (8 properties: 1-2 us
# per event on one thread, against 17-23 us for the lists of before), while a nested object read as
# a string comes back re-written without its escapes (pola-rs/polars#26574): a quote breaks it.
TRAITS_JSON = "_tr"
LINE_FIELDS = (PROPS_JSON, PROPS_NUM_JSON, TRAITS_JSON)

_ENCODE = msgspec.json.Encoder().encode


class PropertyError(ValueError):
    """A property the contract cannot keep: its path and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Flat:
    """Flattened properties: every path with its text, and the numeric paths with their numbers (never mutated)."""

    texts: dict[str, str]
    numbers: dict[str, float]

    def __bool__(self) -> bool:
        return bool(self.texts)


EMPTY = Flat({}, {})


def line_texts(flat: Flat, traits: Flat) -> tuple[str | None, str | None, str | None]:
    """The line's :data:`LINE_FIELDS`: compact JSON objects as text, None (left out of the line) when empty.

    >>> line_texts(flatten({"plan": "pro", "seats": 3}), flatten({"email": "a@b.c"}))
    ('{"plan":"pro","seats":"3"}', '{"seats":3.0}', '{"email":"a@b.c"}')
    """
    return (
        _ENCODE(flat.texts).decode() if flat.texts else None,
        _ENCODE(flat.numbers).decode() if flat.numbers else None,
        _ENCODE(traits.texts).decode() if traits.texts else None,
    )


def flatten(values: Mapping[str, Any] | None, skip: frozenset[str] = frozenset(), *, what: str = "properties") -> Flat:
    """``values`` flattened to dotted paths, leaving out the top-level keys in ``skip`` (declared ones).

    A path written twice (``{"a.b": 1, "a": {"b": 2}}``) keeps its last value, as duplicate keys
    do in JSON. Raises :class:`PropertyError` for a path over :data:`MAX_KEY` characters or an
    event with over :data:`MAX_PROPERTIES` paths; ``what`` names the field (``properties``, ``traits``).
    Written for speed (the collect API runs it for every event): exact type checks, one pass.
    """
    if not values:
        return EMPTY
    texts: dict[str, str] = {}
    numbers: dict[str, float] = {}
    _walk(values, "", 1, skip, texts, numbers)
    if not texts:
        return EMPTY
    if len(texts) > MAX_PROPERTIES:
        raise PropertyError(what, f"has {len(texts):,} properties (nested ones count one each); the limit is {MAX_PROPERTIES:,}")
    longest = max(texts, key=len)
    if len(longest) > MAX_KEY:
        raise PropertyError(f"{what}.{longest[:40]}...", f"the name is {len(longest):,} characters; the limit is {MAX_KEY}")
    return Flat(texts, numbers)


def _walk(
    values: Mapping[str, Any], prefix: str, depth: int, skip: frozenset[str], texts: dict[str, str], numbers: dict[str, float]
) -> None:
    for key, value in values.items():
        if value is None or (depth == 1 and key in skip):
            continue
        path = prefix + key if prefix else key
        kind = type(value)
        if path in texts:  # written before under the same path: the last one counts
            del texts[path]
            numbers.pop(path, None)
        if kind is str:
            texts[path] = value
        elif kind is dict:
            if depth < MAX_DEPTH:
                _walk(value, path + ".", depth + 1, skip, texts, numbers)
            elif value:
                texts[path] = _json_text(value)
        elif kind is bool:
            texts[path] = "true" if value else "false"
        elif kind is float:
            if value - value == 0:  # finite
                texts[path] = repr(value)
                numbers[path] = value
            else:  # 1e400 is valid JSON; the standard library reads it as inf
                texts[path] = "Infinity" if value > 0 else "-Infinity"
        elif kind is int:
            texts[path] = str(value)  # decoders refuse numbers of over 4,300 digits before this
            number = _finite(value)
            if number is not None:
                numbers[path] = number
        else:  # lists (and subclasses of the types above, which JSON decoders do not make)
            texts[path] = _json_text(value)


def _finite(value: int | float) -> float | None:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond a float: kept as text only
        return None
    return number if math.isfinite(number) else None


def _json_text(value: object) -> str:
    try:
        return _ENCODE(value).decode()
    except (OverflowError, TypeError, ValueError):  # integers beyond 64 bits (read by the standard library)
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
