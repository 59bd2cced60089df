"""Metric query options from an HTTP request: query-string lists or a JSON body, type-checked.

Every value a client sends is checked here, once, so :func:`~rta.query.metric_query.make_query`
gets only the types it declares; what the values mean (names, ranges, limits) it checks itself.
Errors are :class:`~rta.errors.QueryError`: the API answers them with 400.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rta.errors import QueryError

# Client values are shown short in errors: a megabyte of text or deep nesting stays out of the reply.
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 80, 80, 3, 5, 5
_WHOLE = re.compile(r"\s*[+-]?\d{1,100}\s*", re.ASCII)
_YES, _NO = ("", "1", "true", "yes", "on"), ("0", "false", "no", "off")  # "?total" alone means yes


def shown(value: object) -> str:
    """A client's value for an error message: its repr, shortened."""
    return _SHORT.repr(value)


def text(name: str, value: object, example: str) -> str:
    """``value`` if it is a string that can be sent on as UTF-8."""
    if not isinstance(value, str):
        msg = f"{name} takes a string, got {shown(value)}; for example {example}"
        raise QueryError(msg)
    try:
        value.encode()
    except UnicodeEncodeError:  # JSON can carry lone surrogates ("\ud800"), which no store accepts
        msg = f"{name}={shown(value)} is not valid Unicode (it holds a lone surrogate); send UTF-8 text"
        raise QueryError(msg) from None
    return value


def _last(params: Mapping[str, Any], name: str) -> object:
    """A single-valued option: the query string gives a list, where the last one counts."""
    value = params.get(name)
    if isinstance(value, list):
        return value[-1] if value else None
    return value


def _names(params: Mapping[str, Any], name: str, example: str) -> list[str]:
    """Names as a comma-separated string or a list of them; duplicates are left to make_query."""
    value = params.get(name)
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
    if items is None or not all(isinstance(item, str) for item in items):
        msg = f"{name} takes names as a comma-separated string or a list of strings, got {shown(value)}; for example {example}"
        raise QueryError(msg)
    return [part.strip() for item in items for part in text(name, item, example).split(",") if part.strip()]


def _time(params: Mapping[str, Any], name: str) -> datetime | None:
    value = _last(params, name)
    if value is None:
        return None
    example = "2026-11-28T00:00:00Z"
    string = text(name, value, example)
    try:
        when = datetime.fromisoformat(string)
    except ValueError:
        msg = f"{name}={shown(value)} is not an ISO 8601 time, e.g. {example}"
        raise QueryError(msg) from None
    if when.tzinfo is None:
        msg = f"{name}={shown(value)} has no time zone; add Z or +00:00"
        raise QueryError(msg)
    return when


def _top(value: object) -> int:
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        value = int(value)
    elif isinstance(value, float) and value.is_integer():  # JSON 10.0; never inf or nan
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"top={shown(value)} is not a whole number; ask for a number of groups, e.g. top=10"
        raise QueryError(msg)
    return value


def _flag(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (*_YES, *_NO):
        return value.strip().lower() in _YES
    msg = f"{name} takes true or false, got {shown(value)}; for example {name}=true"
    raise QueryError(msg)


def _where(value: object) -> dict[str, list[str]] | None:
    """``{dim: value | [values]}`` (JSON), or ``dim=value`` / ``dim=a,b`` items (query string or JSON)."""
    if value is None:
        return None
    if isinstance(value, dict):
        filters: dict[str, list[str]] = {}
        for name, values in value.items():
            items = [values] if isinstance(values, str) else values
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                msg = f"where[{shown(name)}] takes a string or a list of strings, got {shown(values)}; e.g. {{'country': ['US', 'DE']}}"
                raise QueryError(msg)
            filters[text("where", name, "country")] = [text(f"where[{shown(name)}]", v, "'US'") for v in items]
        return filters
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        msg = f"where takes {{dim: value or [values]}} or dim=value items, got {shown(value)}; for example where=country=US,DE"
        raise QueryError(msg)
    filters = {}
    for item in items:
        name, sep, values = text("where", item, "country=US").partition("=")
        if not sep or not name.strip() or not values.strip():
            msg = f"where takes dim=value or dim=a,b, got {shown(item)}"
            raise QueryError(msg)
        filters.setdefault(name.strip(), []).extend(v.strip() for v in values.split(",") if v.strip())
    return filters


def query_options(params: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The metrics and :func:`~rta.query.metric_query.make_query` options in ``params``.

    ``params`` maps names to query-string lists of strings, or to a JSON body's values.

    >>> query_options({"metrics": ["revenue,purchases"], "by": ["country"], "top": ["5"]})
    (['revenue', 'purchases'], {'top': 5, 'by': ['country']})
    >>> query_options({"metrics": [1, 2]})
    Traceback (most recent call last):
    rta.errors.QueryError: metrics takes names as a comma-separated string or a list of strings, got [1, 2]; ...
    """
    metrics = _names(params, "metrics", "metrics=page_views,revenue") if params.get("metrics") is not None else []
    if not metrics:
        msg = "metrics is required, e.g. ?metrics=page_views,revenue"
        raise QueryError(msg)
    options: dict[str, Any] = {}
    for name, example in (("last", "7d"), ("grain", "1h"), ("compare", "previous_period"), ("order_by", "revenue")):
        value = _last(params, name)
        if value is not None:
            options[name] = text(name, value, f"{name}={example}")
    for name in ("start", "end"):
        when = _time(params, name)
        if when is not None:
            options[name] = when
    if _last(params, "top") is not None:
        options["top"] = _top(_last(params, "top"))
    for name in ("fill_gaps", "total"):
        if _last(params, name) is not None:
            options[name] = _flag(name, _last(params, name))
    if params.get("by") is not None:
        options["by"] = _names(params, "by", "by=country,device")
    where = _where(params.get("where"))
    if where is not None:
        options["where"] = where
    return metrics, options
