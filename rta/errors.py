"""One shallow hierarchy of errors: what was wrong, what we got, and a hint."""

from __future__ import annotations


class RtaError(Exception):
    """Base of every error rta raises on purpose."""


class DefinitionError(RtaError, ValueError):
    """A stream, metric or rollup definition is invalid."""


class CompilationError(RtaError):
    """Definitions are individually valid but cannot be compiled together."""


class UnsupportedAggregation(CompilationError):
    """An aggregation node has no translation for a backend."""


class UnsupportedFilter(CompilationError):
    """A filter node has no translation for a backend (ClickHouse SQL or Polars)."""


class BackendError(RtaError):
    """The store refused or failed an operation."""


class QueryError(RtaError, ValueError):
    """A query asks for something the definitions cannot answer."""


class ConfigError(RtaError):
    """A project folder or its rta.toml is invalid."""


class LogFull(RtaError):
    """Events cannot be kept now (the log's size limit, the disk or the insert-id memory is short); retry later."""


def did_you_mean(got: str, options: list[str] | tuple[str, ...]) -> str:
    """A hint listing valid names, closest first."""
    import difflib

    close = difflib.get_close_matches(got, options, n=1)
    listed = ", ".join(repr(o) for o in sorted(options))
    prefix = f"did you mean {close[0]!r}? " if close else ""
    return f"{prefix}valid names are: {listed}"
