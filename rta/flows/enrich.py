"""Dimensions a Segment message implies without stating them: device, browser and OS from the
user agent, country from the IP address (databases shipped in the ua-parser and geoip2fast
wheels). Each distinct value is looked up once; columns map through those lookups."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import polars as pl

AGENT_PARTS = ("device", "browser", "os")


@lru_cache(maxsize=8192)
def agent(user_agent: str) -> tuple[str, str, str]:
    """(device type, browser, os) of a user agent string."""
    from ua_parser import parse

    parsed = parse(user_agent[:512])
    family = (parsed.device.family if parsed.device else "") or ""
    browser = (parsed.user_agent.family if parsed.user_agent else "") or ""
    os_name = (parsed.os.family if parsed.os else "") or ""
    text = user_agent.lower()
    if family == "Spider" or "bot" in text:
        device = "bot"
    elif "ipad" in text or "tablet" in text or (os_name == "Android" and "mobile" not in text):
        device = "tablet"
    elif "mobi" in text or family in {"iPhone", "iPod"}:
        device = "mobile"
    else:
        device = "desktop"
    return device, browser, os_name


@lru_cache(maxsize=1)
def _geoip() -> Any:
    from geoip2fast import GeoIP2Fast

    return GeoIP2Fast()


@lru_cache(maxsize=65536)
def country_of(ip: str) -> str | None:
    """ISO country code of an IP address, or None (private, unknown or not an address)."""
    try:
        code = _geoip().lookup(ip).country_code
    except Exception:  # an unparsable address has no country
        return None
    return code if isinstance(code, str) and len(code) == 2 and code != "--" else None


def map_unique(values: pl.Series, lookup: Any, wanted: pl.Series | None = None) -> pl.Series:
    """``lookup`` applied to each distinct value once (only values of ``wanted`` rows; the others map to null)."""
    uniques = (values if wanted is None else values.filter(wanted)).drop_nulls().unique().to_list()
    if not uniques:
        return pl.Series(values.name, [None] * values.len(), dtype=pl.String)
    mapped = [lookup(v) for v in uniques]
    return values.replace_strict(uniques, mapped, default=None, return_dtype=pl.String)
