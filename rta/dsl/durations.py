"""Durations ("90s", "15m", "7d", "5y") and rollup grains ("1m", "1h", "1d")."""

from __future__ import annotations

import re

from rta.errors import DefinitionError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")
#: The longest duration: anything longer is a typo, and would overflow date arithmetic (timedelta, datetime).
LONGEST = 1000 * _UNIT_SECONDS["y"]

#: Grains a rollup can be kept at, finest first.
GRAINS: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}


def parse_duration(text: str, *, what: str = "duration") -> int:
    """Seconds in a duration such as ``"7d"``.

    >>> parse_duration("90d"), parse_duration("15m")
    (7776000, 900)
    >>> parse_duration("99999999y")
    Traceback (most recent call last):
    rta.errors.DefinitionError: invalid duration: '99999999y' is longer than the longest duration, 1000y; ...
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    digits = match.group(1).lstrip("0") if match else ""
    # Counted before int(), which refuses more than 4,300 digits (CPython's int_max_str_digits).
    seconds = int(digits or "0") * _UNIT_SECONDS[match.group(2)] if match and len(digits) <= len(str(LONGEST)) else LONGEST + 1
    got = f"{text[:40]!r}... ({len(text):,} characters)" if isinstance(text, str) and len(text) > 40 else repr(text)
    if match is None or seconds == 0:
        msg = f"invalid {what}: got {got}; write a positive number and a unit s, m, h, d, w or y, for example '7d' or '15m'"
        raise DefinitionError(msg)
    if seconds > LONGEST:
        msg = f"invalid {what}: {got} is longer than the longest duration, 1000y; write a shorter one, for example '365d'"
        raise DefinitionError(msg)
    return seconds


def check_grain(grain: str, *, owner: str) -> str:
    """Return ``grain`` if rollups can be kept at it, else raise naming the owner."""
    if grain not in GRAINS:
        msg = f"{owner}: unknown grain {grain!r}; valid grains are: {', '.join(GRAINS)}"
        raise DefinitionError(msg)
    return grain
