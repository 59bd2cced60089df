"""Requests for per-person answers (funnels, retention, paths): which definition, over which range, split and filtered how.

The same from Python, the CLI and REST. Like :class:`~rta.query.request.QueryRequest` a request is
checked once for types here and serializes to JSON and back (filters as trees), so
``RemoteWorkspace`` asks the owner exactly what was asked. The three kinds differ only in the name
of the key that names the definition (``funnel=``, ``retention=``, ``paths=``) and their few own options.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Self

from rta.dsl import expr as ex
from rta.dsl.durations import parse_duration
from rta.errors import DefinitionError, QueryError
from rta.query.client_values import flag, names, refused, shown, text, time_of, whole
from rta.query.where_json import parse_where, where_json

DEFAULT_LAST = "7d"
MAX_TOP = 1000
OWN_OPTIONS = ("top", "every", "window")  # options of one kind only: each lists its own in ``extra``


@dataclass(frozen=True, slots=True)
class PersonRequest:
    """``name`` over ``[start, end)`` (or the ``last`` span back from ``end``/now), by ``by``, where ``where``.

    ``by=None`` uses the definition's own breakdown; ``by=()`` asks for none.
    """

    kind: ClassVar[str] = ""  # the key naming the definition: "funnel", "retention", "paths"
    extra: ClassVar[tuple[str, ...]] = ()  # the options only this kind takes
    default_last: ClassVar[str] = DEFAULT_LAST

    name: str
    last: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    by: tuple[str, ...] | None = None
    where: ex.Expr | None = None
    top: int | None = None  # paths: how many paths per group
    every: str | None = None  # funnels: one funnel per window, windows ending this far apart
    window: str | None = None  # funnels with every=: each window's length (default: every)
    explain: bool = False  # the REST API's switch: answer with what ran instead of the frame

    @classmethod
    def of(cls, name: object, **options: object) -> Self:
        """From Python values (``where`` an expression or ``{field: value | [values]}``); ``None`` means unset."""
        return cls.from_json({cls.kind: name, **options})

    @classmethod
    def options(cls) -> list[str]:
        """The options this kind takes, in order."""
        own = [f.name for f in fields(cls) if f.name not in ("name", *OWN_OPTIONS)]
        return [cls.kind, *own[:-1], *cls.extra, own[-1]]

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Self:
        """From a JSON object; unknown options are refused by name."""
        known = cls.options()
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise refused(f"unknown {cls.kind} option {shown(unknown[0])}; valid options are: {', '.join(known)}")
        values: dict[str, Any] = {"name": text(cls.kind, data.get(cls.kind), f"{cls.kind}=name")}
        if data.get("last") is not None:
            values["last"] = text("last", data["last"], "last=7d")
        for name in ("start", "end"):
            if data.get(name) is not None:
                values[name] = time_of(name)(data[name])
        if data.get("by") is not None:
            values["by"] = names("by", data["by"], "by=device")
        if data.get("where") is not None:
            values["where"] = parse_where(data["where"])
        if data.get("top") is not None:
            top = whole(data["top"])
            if not 1 <= top <= MAX_TOP:
                raise refused(f"top={top} is out of range; ask for 1 to {MAX_TOP}, e.g. top=20")
            values["top"] = top
        for name in ("every", "window"):
            if data.get(name) is not None:
                values[name] = text(name, data[name], f"{name}=1h")
        if data.get("explain") is not None:
            values["explain"] = flag("explain")(data["explain"])
        return cls(**values)

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> Self:
        """From a query string's lists (the last value of single options; ``by`` and ``where`` repeat) and a JSON body."""
        data: dict[str, object] = {}
        for name, value in params.items():
            if isinstance(value, list) and name not in ("by", "where"):
                value = value[-1] if value else None
            data[name] = value
        return cls.from_json(data)

    def to_json(self) -> dict[str, Any]:
        """The options that are set, as JSON values (:meth:`from_json` reads them back)."""
        out: dict[str, Any] = {self.kind: self.name}
        for name in ("last", "start", "end", "by", "top", "every", "window"):
            value = getattr(self, name)
            if value is None:
                continue
            out[name] = value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, tuple) else value
        if self.where is not None:
            out["where"] = where_json(self.where)
        if self.explain:
            out["explain"] = True
        return out

    def but(self, **changes: object) -> Self:
        """A copy with some options changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def span(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The range ``[start, end)`` asked for: ``start``/``end``, else ``last`` back from ``end`` or now."""
        if self.start is not None and self.last is not None:
            raise refused("give start= or last=, not both")
        end = self.end or (now or datetime.now(UTC))
        if self.start is not None:
            start = self.start
        else:
            try:
                seconds = parse_duration(self.last or self.default_last, what="last=")
            except DefinitionError as err:
                raise QueryError(str(err)) from None
            start = end - timedelta(seconds=seconds)
        if start >= end:
            raise refused(f"the range is empty: start {start.isoformat()} is not before end {end.isoformat()}")
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class FunnelRequest(PersonRequest):
    """A funnel's request; with ``every`` (and ``window``), one funnel per window (conversion over time).

    >>> r = FunnelRequest.of("checkout", last="24h", by="device", where={"country": "FR"}, every="1h")
    >>> FunnelRequest.from_json(r.to_json()) == r
    True
    """

    kind: ClassVar[str] = "funnel"
    extra: ClassVar[tuple[str, ...]] = ("every", "window")


@dataclass(frozen=True, slots=True)
class RetentionRequest(PersonRequest):
    """A retention matrix's request (``last`` defaults to the matrix's span, ``every`` times ``periods``)."""

    kind: ClassVar[str] = "retention"
    default_last: ClassVar[str] = "the matrix's span"  # said in help texts; the span itself is the definition's


@dataclass(frozen=True, slots=True)
class PathsRequest(PersonRequest):
    """A paths request: ``top`` paths per group (default 20).

    >>> PathsRequest.of("after_signup", top=5).to_json()
    {'paths': 'after_signup', 'top': 5}
    """

    kind: ClassVar[str] = "paths"
    extra: ClassVar[tuple[str, ...]] = ("top",)
