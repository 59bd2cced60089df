"""Erasure (GDPR/CCPA): remove a person's traits, aliases and raw events, and record the request.

Rows go with ``ALTER TABLE ... DELETE`` and ``mutations_sync = 2``: ClickHouse rewrites the parts
that hold them before the statement returns, so the answer means the data is gone from disk (a
lightweight ``DELETE`` only masks rows until a merge). Rollups stay: they hold counts, sums and
sketches, and distinct-count sketches keep hashes of ids, never an id. The record keeps SHA-256
hashes of the ids, so the flow can drop a replay of the person's events without the record being
the erased id (:mod:`rta.flows.people`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
import sqlglot.expressions as exp
from clickhouse_connect.driver.client import Client

from rta.compiler.plan import Plan
from rta.compiler.sql_filter import Params
from rta.contract.people import ERASURES_COLUMNS, ERASURES_TABLE, has_people, id_hash, latest_aliases
from rta.errors import QueryError
from rta.store.erased import GATE, id_tables

ROLLUPS_STAY = "rollups hold no personal data (counts, sums, and distinct-count sketches of hashed ids) and stay"


@dataclass(frozen=True, slots=True)
class Erasure:
    """What one erasure removed: the person, every id of theirs, rows per table, when and for whom."""

    person: str
    ids: tuple[str, ...]
    rows: tuple[tuple[str, int], ...]  # (table, rows removed)
    at: datetime
    requested_by: str

    @property
    def total(self) -> int:
        """Rows removed in all."""
        return sum(n for _, n in self.rows)

    def as_json(self) -> dict[str, object]:
        """The API's answer (ids are the caller's own; nothing else about the person)."""
        return {"person": self.person, "ids": list(self.ids), "rows": dict(self.rows), "total": self.total, "at": self.at.isoformat(),
                "requested_by": self.requested_by, "rollups": ROLLUPS_STAY}  # fmt: skip

    def __str__(self) -> str:
        removed = ", ".join(f"{n:,} from {t}" for t, n in self.rows if n) or "nothing (no rows had these ids)"
        return (
            f"erased person {self.person!r} ({len(self.ids)} id{'s' if len(self.ids) != 1 else ''}: {', '.join(self.ids)}): "
            f"{self.total:,} rows removed: {removed}\nrecorded in {ERASURES_TABLE} at {self.at.isoformat(timespec='seconds')} "
            f"for {self.requested_by} (ids kept as SHA-256 hashes only); replays of their events are dropped\n{ROLLUPS_STAY}"
        )


def _col(name: str) -> exp.Column:
    return exp.column(exp.to_identifier(name))


def _sql(node: exp.Expr) -> str:
    return node.sql(dialect="clickhouse")


def _ids_of(client: Client, person: str) -> tuple[str, ...]:
    """The person's id and the anonymous ids aliased to it (an anonymous id given is erased alone, with its link)."""
    params = Params()
    links = exp.select(_col("anonymous")).from_(latest_aliases().subquery("_a"))
    links = links.where(exp.EQ(this=_col("person"), expression=params.add(person, "String")))
    aliased = sorted({str(a) for (a,) in client.query(_sql(links), parameters=params.values).result_rows} - {person})
    return (person, *aliased)


def _matching(columns: tuple[str, ...], params: Params, ids: tuple[str, ...]) -> exp.Expr:
    bound = params.add(list(ids), "Array(String)")
    return exp.or_(*(exp.func("has", bound.copy(), _col(c)) for c in columns))


def erase(client: Client, plan: Plan, person: str, requested_by: str, *, now: datetime | None = None) -> Erasure:
    """Remove everything stored about ``person`` (and the anonymous ids aliased to them); record the request."""
    if not has_people(plan.streams):
        msg = "the project keeps no people: no stream names its user column, so there is no one to erase by id"
        raise QueryError(msg)
    if not isinstance(person, str) or not person.strip():
        msg = f"erasing takes a person's id (their user id), got {person!r}"
        raise QueryError(msg)
    with GATE.erasing():  # no insert of ids runs meanwhile; each later one sees the record (rta/store/erased.py)
        return _erase(client, plan, person, requested_by, now or datetime.now(UTC))


def _erase(client: Client, plan: Plan, person: str, requested_by: str, at: datetime) -> Erasure:
    ids = _ids_of(client, person)
    removed = []
    for table, columns in ((t.table, t.ids) for t in id_tables(plan)):
        params = Params()
        where = _matching(columns, params, ids)
        counted = exp.select(exp.alias_(exp.func("count"), "n")).from_(exp.to_table(table)).where(where)
        rows = int(client.query(_sql(counted), parameters=params.values).result_rows[0][0])
        if rows:
            delete = exp.Alter(this=exp.to_table(table), kind="TABLE", actions=[exp.Delete(where=exp.Where(this=where.copy()))])
            client.command(_sql(delete), parameters=params.values, settings={"mutations_sync": 2})
        removed.append((table, rows))
    record = pa.table(
        {
            "person_hash": [id_hash(person)],
            "id_hashes": pa.array([[id_hash(i) for i in ids]], pa.list_(pa.string())),
            "at": pa.array([at], pa.timestamp("ms", "UTC")),
            "requested_by": [requested_by],
            "rows": pa.array([sum(n for _, n in removed)], pa.uint64()),
        }
    )
    assert record.column_names == [c for c, _ in ERASURES_COLUMNS]
    client.insert_arrow(ERASURES_TABLE, record)
    return Erasure(person, ids, tuple(removed), at, requested_by)
