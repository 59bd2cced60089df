"""Names of tables and flow steps, versioned by what changes results."""

from __future__ import annotations

import hashlib


def version_of(*parts: object) -> str:
    """A short stable hash of ``parts``' reprs; changes whenever results would change.

    >>> version_of("traffic", ("country",))
    '511ff336'
    """
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()
    return digest[:8]


def table_name(*words: str) -> str:
    """``rta_`` + words joined by underscores: every table rta owns starts with ``rta_``."""
    return "_".join(("rta", *words))


def step_id(*words: str) -> str:
    """A Bytewax step id (no periods allowed) from words."""
    return "__".join(w.replace(".", "_") for w in words)
