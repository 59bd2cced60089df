"""Rules for the names of streams, fields, metrics and rollups (they become SQL identifiers)."""

from __future__ import annotations

import re

from rta.errors import DefinitionError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

#: Column names rta itself uses in its tables.
RESERVED = frozenset({"minute", "bucket", "events", "value", "final"})


def check_name(name: object, *, what: str) -> str:
    """Return ``name`` if it is a valid identifier for ``what``, else raise."""
    if not isinstance(name, str) or not _NAME.match(name) or "__" in name:
        msg = (
            f"invalid {what} name {name!r}: use lowercase letters, digits and single underscores, "
            "starting with a letter (at most 63 characters), for example 'page_views'"
        )
        raise DefinitionError(msg)
    return name


def check_field_name(name: object, *, stream: str) -> str:
    """A field name that is a valid identifier and not one rta reserves."""
    checked = check_name(name, what=f"field of stream {stream!r}")
    if checked in RESERVED:
        msg = f"stream {stream!r}: field name {checked!r} is reserved by rta ({', '.join(sorted(RESERVED))}); rename it"
        raise DefinitionError(msg)
    return checked
