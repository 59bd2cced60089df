"""Durations ("90s", "15m", "7d", "5y") and rollup grains ("1m", "1h", "1d")."""

from __future__ import annotations

import re

from rta.errors import DefinitionError

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdwy])\s*$")

#: Grains a rollup can be kept at, finest first.
GRAINS: dict[str, int] = {"1m": 60, "1h": 3600, "1d": 86400}


def parse_duration(text: str, *, what: str = "duration") -> int:
    """Seconds in a duration such as ``"7d"``.

    >>> parse_duration("90d"), parse_duration("15m")
    (7776000, 900)
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) == 0:
        msg = f"invalid {what}: got {text!r}; write a positive number and a unit s, m, h, d, w or y, for example '7d' or '15m'"
        raise DefinitionError(msg)
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def check_grain(grain: str, *, owner: str) -> str:
    """Return ``grain`` if rollups can be kept at it, else raise naming the owner."""
    if grain not in GRAINS:
        msg = f"{owner}: unknown grain {grain!r}; valid grains are: {', '.join(GRAINS)}"
        raise DefinitionError(msg)
    return grain
