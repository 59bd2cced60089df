"""The browser tracker served at ``/rta.js`` (a few KB, no dependencies)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def tracker_js() -> bytes:
    """The script's bytes."""
    return resources.files("rta.ingest").joinpath("static/rta.js").read_bytes()
