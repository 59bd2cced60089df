"""What ``ws.person`` and ``ws.people`` answer with: frozen results that show themselves in text and in notebooks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from rta.dsl.expr import Expr
from rta.dsl.shown import block, card, html_table, listed

_SKIPPED = ("time", "stream", "properties")


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def properties_text(value: object) -> str:
    """A ``props`` map as Polars returns it (a list of key/value structs, or a dict) as ``k=v, ...``."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [(p["key"], p["value"]) for p in value if isinstance(p, Mapping)]
    else:
        return ""
    return ", ".join(f"{k}={v}" for k, v in pairs)


@dataclass(frozen=True, slots=True)
class Person:
    """One person: their id, every id of theirs (aliased anonymous ids), traits, when seen, newest events first."""

    id: str
    ids: tuple[str, ...]
    traits: Mapping[str, str]
    first_seen: datetime | None
    last_seen: datetime | None
    events: int  # every event of theirs in the raw events kept
    timeline: pl.DataFrame  # time, stream, id, the stream's dimensions and measures, properties; newest first

    def _event_lines(self) -> list[tuple[str, str, str]]:
        rows = []
        for row in self.timeline.iter_rows(named=True):
            name = str(row.get("event") or row.get("stream") or "")
            dims = ", ".join(f"{k}={v}" for k, v in row.items() if k not in (*_SKIPPED, "event", "id") and v not in (None, ""))
            rest = "; ".join(part for part in (dims, properties_text(row.get("properties"))) if part)
            rows.append((_when(row["time"]), name, rest))
        return rows

    def _summary(self) -> list[tuple[str, str]]:
        aliased = [i for i in self.ids if i != self.id]
        return [
            ("ids", listed(self.ids) + (f" ({len(aliased)} aliased)" if aliased else "")),
            ("traits", listed(f"{k}={v}" for k, v in self.traits.items()) if self.traits else "none"),
            ("seen", f"{_when(self.first_seen)} .. {_when(self.last_seen)}, {self.events:,} events"),
        ]

    def __repr__(self) -> str:
        lines = [f"{label} {value}" for label, value in self._summary()]
        lines += [f"  {when}  {name}  {rest}".rstrip() for when, name, rest in self._event_lines()]
        return block(f"Person {self.id}", lines)

    def _repr_html_(self) -> str:
        events = html_table(["time", "event", "details"], self._event_lines(), limit=20)
        return card("Person", self.id, self._summary(), extra=[events])


@dataclass(frozen=True, slots=True)
class ListedPerson:
    """One row of ``ws.people``: the person, their traits, when first and last seen in events, and how many."""

    id: str
    traits: Mapping[str, str]
    first_seen: datetime | None  # None: never seen in raw events (traits only)
    last_seen: datetime | None
    events: int


@dataclass(frozen=True, slots=True)
class PeopleList:
    """People with events or traits, the most recently active first."""

    people: tuple[ListedPerson, ...]
    filters: tuple[Expr, ...] = ()

    def __len__(self) -> int:
        return len(self.people)

    @property
    def ids(self) -> list[str]:
        """The people's ids, in order."""
        return [p.id for p in self.people]

    def to_polars(self) -> pl.DataFrame:
        """One row per person: ``person``, ``first_seen``, ``last_seen``, ``events`` and a column per trait (``person.<key>``)."""
        keys = sorted({k for p in self.people for k in p.traits})
        people = self.people
        data: dict[str, list[object]] = {"person": [p.id for p in people], "first_seen": [p.first_seen for p in people],
                                         "last_seen": [p.last_seen for p in people], "events": [p.events for p in people]}  # fmt: skip
        data |= {f"person.{k}": [p.traits.get(k) for p in self.people] for k in keys}
        time = pl.Datetime("ms", "UTC")
        schema: dict[str, pl.DataType] = {"person": pl.String(), "first_seen": time, "last_seen": time, "events": pl.Int64()}
        schema |= {f"person.{k}": pl.String() for k in keys}
        return pl.DataFrame(data, schema=schema)

    def _title(self) -> str:
        shown = " & ".join(f.code() for f in self.filters)
        return f"{len(self.people):,} people" + (f" where {shown}" if shown else "")

    def _rows(self) -> list[tuple[str, str, str, str]]:
        return [(p.id, listed(f"{k}={v}" for k, v in p.traits.items()) or "none", _when(p.last_seen), f"{p.events:,}") for p in self.people]

    def __repr__(self) -> str:
        if not self.people:
            return f"{self._title()}: nobody (people are listed once they have events or traits)"
        return block(self._title(), [f"{p}  last seen {seen}  {n} events  traits {traits}" for p, traits, seen, n in self._rows()])

    def _repr_html_(self) -> str:
        return card("People", self._title(), extra=[html_table(["person", "traits", "last seen", "events"], self._rows())])
