"""Values a client sends, type-checked: names, times, whole numbers, flags, choices.

Each parser takes a Python value or its JSON / query-string form and returns the declared type,
or raises :class:`~rta.errors.QueryError` naming the option, the value (shortened) and an example.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Sequence
from datetime import datetime

from rta.errors import QueryError

# Client values are shown short in errors: a megabyte of text or deep nesting stays out of the reply.
_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 80, 80, 3, 5, 5
_WHOLE = re.compile(r"\s*[+-]?\d{1,100}\s*", re.ASCII)
_YES, _NO = ("", "1", "true", "yes", "on"), ("0", "false", "no", "off")  # "?total" alone means yes


def shown(value: object) -> str:
    """A client's value for an error message: its repr, shortened."""
    return _SHORT.repr(value)


def refused(message: str) -> QueryError:
    return QueryError(message)


def text(name: str, value: object, example: str) -> str:
    """``value`` if it is a string that can be sent on as UTF-8."""
    if not isinstance(value, str):
        raise refused(f"{name} takes a string, got {shown(value)}; for example {example}")
    try:
        value.encode()
    except UnicodeEncodeError:  # JSON can carry lone surrogates ("\ud800"), which no store accepts
        raise refused(f"{name}={shown(value)} is not valid Unicode (it holds a lone surrogate); send UTF-8 text") from None
    return value


def names(name: str, value: object, example: str) -> tuple[str, ...]:
    """Names as a comma-separated string or a list of them; duplicates are left to make_query."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list | tuple) else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise refused(f"{name} takes names as a comma-separated string or a list of strings, got {shown(value)}; for example {example}")
    return tuple(part.strip() for item in items for part in text(name, item, example).split(",") if part.strip())


def choice(name: str, choices: Sequence[str], refusal: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        found = text(name, value, f"{name}={choices[0]}")
        if found not in choices:
            raise refused(refusal.format(shown(found), ", ".join(choices)))
        return found

    return parse


def time_of(name: str) -> Callable[[object], datetime]:
    def parse(value: object) -> datetime:
        if isinstance(value, datetime):
            when = value
        else:
            example = "2026-11-28T00:00:00Z"
            string = text(name, value, example)
            try:
                when = datetime.fromisoformat(string)
            except ValueError:
                raise refused(f"{name}={shown(value)} is not an ISO 8601 time, e.g. {example}") from None
        if when.tzinfo is None:
            raise refused(f"{name}={shown(value)} has no time zone; add Z or +00:00 (datetime(..., tzinfo=UTC) in Python)")
        return when

    return parse


def whole(value: object) -> int:
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        value = int(value)
    elif isinstance(value, float) and value.is_integer():  # JSON 10.0; never inf or nan
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise refused(f"top={shown(value)} is not a whole number; ask for a number of groups, e.g. top=10")
    return value


def flag(name: str) -> Callable[[object], bool]:
    def parse(value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in (*_YES, *_NO):
            return value.strip().lower() in _YES
        raise refused(f"{name} takes true or false, got {shown(value)}; for example {name}=true")

    return parse
