"""Schema-free properties: how the collect API flattens what a client sends, and writes it for the flow.

A stream declares the dimensions and measures its rollups read; everything else a client sends in
``properties`` (and, for people, in ``traits``) is kept too, flattened to dotted paths:

    {"plan": "pro", "cart": {"items": 3, "coupon": null}, "tags": ["a", "b"], "beta": true}
    -> plan = "pro", cart.items = "3" (and the number 3), tags = '["a","b"]', beta = "true"

Strings stay as they are; numbers are written as JSON writes them and kept as numbers too;
booleans are ``true``/``false``; lists (and objects nested deeper than :data:`MAX_DEPTH`) are
their compact JSON; nulls and empty objects are left out. The log line carries them as parallel
lists (``_pk``/``_pv`` every text, ``_nk``/``_nv`` the numbers, ``_tk``/``_tv`` the traits), which
Polars reads without inferring anything, and which the flow turns into the raw table's maps
(:mod:`rta.compiler.properties`) without looking at a single value.
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
    PROPS_NUM,
    number_column,
    number_value,
    text_column,
    text_value,
)

__all__ = [
    "LINE_FIELDS",
    "MAX_DEPTH",
    "MAX_KEY",
    "MAX_MATERIALIZED",
    "MAX_PROPERTIES",
    "PERSON_PREFIX",
    "PROPS",
    "PROPS_NUM",
    "PROP_PREFIX",
    "Flat",
    "PropertyError",
    "flatten",
    "number_column",
    "number_value",
    "text_column",
    "text_value",
]

MAX_PROPERTIES = 1_000  # flattened paths per event
MAX_KEY = 200  # characters of a flattened path
MAX_DEPTH = 8  # levels of objects flattened; deeper ones are kept as their JSON text
# The log line's lists: property paths and texts, numeric paths and numbers, trait paths and texts.
LINE_FIELDS = ("_pk", "_pv", "_nk", "_nv", "_tk", "_tv")

_ENCODE = msgspec.json.Encoder().encode


class PropertyError(ValueError):
    """A property the contract cannot keep: its path and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Flat:
    """Flattened properties: every path with its text, and the numeric paths with their numbers."""

    keys: list[str]
    texts: list[str]
    number_keys: list[str]
    numbers: list[float]

    def __bool__(self) -> bool:
        return bool(self.keys)


EMPTY = Flat([], [], [], [])


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
    return Flat(list(texts), list(texts.values()), list(numbers), list(numbers.values()))


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
