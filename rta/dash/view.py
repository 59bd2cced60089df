"""What a viewer is looking at: time range, grain and filters. Immutable; URLs round-trip it.

The widget, the static report and the shared page all derive their queries from a ``View``,
so a filter set in one (or in a URL) means the same thing in the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from rta.dsl.dashboard import GRAIN_CHOICES, Dashboard
from rta.dsl.durations import parse_duration
from rta.dsl.funnel import MAX_STEPS
from rta.errors import DefinitionError, QueryError, did_you_mean

RANGE_PRESETS = ("1h", "24h", "7d", "30d")
MAX_FILTER_VALUES = 50
# Parameters link tools append (campaign tags, click ids); ignored unless the dashboard has such a dimension.
TRACKING_PARAMS = frozenset({"gclid", "fbclid", "msclkid", "dclid", "yclid", "mc_cid", "mc_eid", "ref", "_ga", "_gl"})


def _tracking(key: str) -> bool:
    return key.startswith("utm_") or key in TRACKING_PARAMS


URL_PARAMS = ("last", "start", "end", "grain", "by", "step")  # besides filters; a dimension of one of these names filters only as f.NAME


@dataclass(frozen=True, slots=True)
class View:
    """A time range (``last`` or ``start``/``end``), a grain and filters ``((dim, (values...)), ...)``."""

    last: str | None = "7d"
    start: datetime | None = None
    end: datetime | None = None
    grain: str = "auto"
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    breakdown: str | None = None  # the dimension breakdown panels split by, instead of their own
    step: tuple[str, int] | None = None  # (funnel, step number): the funnel step whose people are split (a click on a step)

    @classmethod
    def of(cls, board: Dashboard) -> View:
        """The dashboard's default view."""
        return cls(last=board.last, grain=board.grain)

    def where(self) -> dict[str, list[str]]:
        """Filters as the query layer's ``where=``."""
        return {dim: list(values) for dim, values in self.filters}

    def range_options(self) -> dict[str, object]:
        """The range as query options."""
        if self.start is not None:
            return {"start": self.start, "end": self.end, "last": None}
        return {"last": self.last}

    def with_range(self, last: str | None = None, *, start: datetime | None = None, end: datetime | None = None) -> View:
        """A copy over another range: ``last="24h"`` or ``start=``/``end=`` (end defaults to now)."""
        if start is not None:
            if start.tzinfo is None or (end is not None and end.tzinfo is None):
                msg = f"give time-zone-aware start/end (for example datetime(..., tzinfo=UTC)), got start={start!r} end={end!r}"
                raise QueryError(msg)
            if end is not None and end <= start:
                msg = f"the range is empty: start {start.isoformat()} is not before end {end.isoformat()}"
                raise QueryError(msg)
            return replace(self, last=None, start=start, end=end)
        try:
            parse_duration(last or "", what="time range")
        except DefinitionError as err:
            raise QueryError(str(err)) from None
        return replace(self, last=last, start=None, end=None)

    def with_grain(self, grain: str) -> View:
        """A copy at another grain (``auto``, ``1m``, ``1h``, ``1d``)."""
        if grain not in GRAIN_CHOICES:
            msg = f"unknown grain {grain!r}; valid grains are: {', '.join(GRAIN_CHOICES)}"
            raise QueryError(msg)
        return replace(self, grain=grain)

    def with_breakdown(self, dim: str | None) -> View:
        """A copy whose breakdown panels split by ``dim`` (None: each panel's own dimension)."""
        return replace(self, breakdown=dim or None)

    def with_step(self, funnel: str | None, step: int | None = None) -> View:
        """A copy whose funnel panels of ``funnel`` split the people of ``step`` (None: no step is split)."""
        if funnel is None or step is None:
            return replace(self, step=None)
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= MAX_STEPS:
            msg = f"funnel {funnel!r}: a step is a number from 1 to {MAX_STEPS}, got {step!r}"
            raise QueryError(msg)
        return replace(self, step=(funnel, step))

    def step_crumb(self) -> str | None:
        """The split step as text: ``checkout step 2``."""
        return None if self.step is None else f"{self.step[0]} step {self.step[1]}"

    def with_filter(self, dim: str, values: str | Sequence[str]) -> View:
        """A copy where ``dim`` is one of ``values`` (an empty list removes the filter)."""
        chosen = (values,) if isinstance(values, str) else tuple(dict.fromkeys(str(v) for v in values))
        if len(chosen) > MAX_FILTER_VALUES:
            msg = f"filter {dim!r} has {len(chosen)} values; at most {MAX_FILTER_VALUES} are allowed"
            raise QueryError(msg)
        rest = tuple((d, v) for d, v in self.filters if d != dim)
        return replace(self, filters=(*rest, (dim, chosen)) if chosen else rest)

    def drill(self, dim: str, value: str) -> View:
        """A copy narrowed to ``dim == value`` (what clicking a bar or a row does); the same view if it already is."""
        return self if dict(self.filters).get(dim) == (value,) else self.with_filter(dim, [value])

    def without(self, dim: str | None = None) -> View:
        """A copy without the filter on ``dim`` (all filters when ``dim`` is None)."""
        return replace(self, filters=() if dim is None else tuple((d, v) for d, v in self.filters if d != dim))

    def breadcrumb(self) -> list[str]:
        """Active filters as text, one per dimension: ``country = US``, ``device in mobile, tablet``."""
        return [f"{d} = {v[0]}" if len(v) == 1 else f"{d} in {', '.join(v)}" for d, v in self.filters]

    def describe_range(self, now: datetime | None = None) -> str:
        """The range in words."""
        if self.start is None:
            return f"last {self.last}"
        end = self.end or now or datetime.now(UTC)
        return f"{self.start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"

    def to_params(self) -> dict[str, list[str]]:
        """URL query parameters: ``last``/``start``/``end``, ``grain``, ``by`` and ``f.<dim>`` per filter."""
        params: dict[str, list[str]] = {}
        if self.start is not None:
            params["start"] = [self.start.isoformat()]
            if self.end is not None:
                params["end"] = [self.end.isoformat()]
        else:
            params["last"] = [self.last or ""]
        if self.grain != "auto":
            params["grain"] = [self.grain]
        if self.breakdown:
            params["by"] = [self.breakdown]
        if self.step is not None:
            params["step"] = [f"{self.step[0]}:{self.step[1]}"]
        for dim, values in self.filters:
            params[f"f.{dim}"] = list(values)
        return params

    @classmethod
    def from_params(cls, board: Dashboard, params: Mapping[str, Sequence[str]]) -> View:
        """The view a URL asks for, checked against the dashboard's dimensions.

        A filter is ``f.country=DE`` (what :meth:`to_params` writes) or, as in Plausible's and
        PostHog's links, ``country=DE``; both may repeat (any of the values). Any other parameter
        is refused with the ones this page takes: a misspelt one silently showing everything is
        how a wrong number gets shared."""
        view = cls.of(board)
        dims = list(board.dimensions())
        filters: dict[str, list[str]] = {}
        for key, values in params.items():
            dim = key[2:] if key.startswith("f.") else key if key not in URL_PARAMS else None
            if dim is None:
                continue
            if dim not in dims and _tracking(key):  # a mail or ad tool tagged the link: not a question about the data
                continue
            if dim not in dims:
                if key.startswith("f."):
                    msg = f"dashboard {board.name!r} cannot filter by {dim!r}; {did_you_mean(dim, dims)}"
                else:
                    takes = (
                        f"{', '.join(URL_PARAMS)} and a filter per dimension (f.{dims[0]}=... or {dims[0]}=...)"
                        if dims
                        else ", ".join(URL_PARAMS)
                    )
                    msg = f"unknown parameter {key!r}; this page takes {takes}; {did_you_mean(key, [*URL_PARAMS, *dims])}"
                raise QueryError(msg)
            filters.setdefault(dim, []).extend(values)
        try:
            if params.get("start"):
                start = datetime.fromisoformat(params["start"][0])
                end = datetime.fromisoformat(params["end"][0]) if params.get("end") else None
                view = view.with_range(start=start, end=end)
            elif params.get("last"):
                view = view.with_range(params["last"][0])
        except ValueError as err:
            msg = f"bad start/end in the URL: {err}; use ISO times such as 2026-11-28T00:00:00+00:00"
            raise QueryError(msg) from None
        if params.get("grain"):
            view = view.with_grain(params["grain"][0])
        if params.get("by") and params["by"][0]:
            dim = params["by"][0]
            if dim not in board.dimensions():
                msg = f"dashboard {board.name!r} cannot break down by {dim!r}; {did_you_mean(dim, list(board.dimensions()))}"
                raise QueryError(msg)
            view = view.with_breakdown(dim)
        if params.get("step") and params["step"][0]:
            view = _with_step_param(view, board, params["step"][0])
        for dim, values in filters.items():
            view = view.with_filter(dim, [v for v in values if v])
        return view


def _with_step_param(view: View, board: Dashboard, text: str) -> View:
    """``step=checkout:2`` from a URL: a funnel a panel draws, and a step number."""
    funnel, _, number = text.rpartition(":")
    funnels = list(board.funnel_names())
    if funnel not in funnels:
        msg = f"dashboard {board.name!r} draws no funnel {funnel or text!r} (step={text!r}); {did_you_mean(funnel or text, funnels)}"
        raise QueryError(msg)
    if not number.isdigit():
        msg = f"step={text!r}: give the funnel and a step number, such as step={funnel}:2"
        raise QueryError(msg)
    return view.with_step(funnel, int(number))
