"""The compiled plan: plain frozen data that the store, the flow and queries read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlglot.expressions as exp

from rta.compiler.aggregations import PartKind
from rta.dsl.definitions import Definitions
from rta.dsl.expr import Expr

if TYPE_CHECKING:
    from rta.compiler.flow_steps import FlowStep


@dataclass(frozen=True, slots=True)
class Part:
    """One stored column of a metric: computed by the flow, merged by queries."""

    column: str  # <metric>__<suffix>
    metric: str
    kind: PartKind
    flow_op: str  # "rows" | "present" | "sum" | "min" | "max" | "unique" | "values"
    field: str | None
    where: Expr | None

    def merged(self) -> exp.Expr:
        """The aggregate that merges this part's states (queries and projections use the same one)."""
        column = exp.column(exp.to_identifier(self.column))
        if self.kind.params:
            return exp.ParameterizedAgg(
                this=self.kind.merge, expressions=[exp.Literal.number(p) for p in self.kind.params], params=[column]
            )
        return exp.func(self.kind.merge, column)


@dataclass(frozen=True, slots=True)
class GrainTable:
    """A rollup table at one grain."""

    grain: str
    table: str
    view: str  # materialized view from the input table
    ttl_seconds: int


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """How one rollup is stored: an input table, one table per grain, its parts."""

    name: str
    stream: str
    version: str
    dims: tuple[str, ...]
    input_table: str
    tables: tuple[GrainTable, ...]
    parts: tuple[Part, ...]

    def table(self, grain: str) -> GrainTable | None:
        """The table kept at ``grain``, if any."""
        return next((t for t in self.tables if t.grain == grain), None)

    def metric_parts(self, metric: str) -> tuple[Part, ...]:
        """The parts that store ``metric`` (empty when it is not in this rollup)."""
        return tuple(p for p in self.parts if p.metric == metric)


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """How the flow cuts a stream's events into visits, and the table of their signed rows (rta/flows/sessions.py)."""

    table: str
    gap_seconds: int
    max_seconds: int
    lateness_seconds: int
    dims: tuple[str, ...]  # the stream's dimensions, of each visit's first event
    path: str | None  # the dimension giving entry and exit pages
    ttl_seconds: int

    @property
    def rollup(self) -> str:
        """The table of the visits' signed sums per minute (rta/compiler/sessions_ddl.py)."""
        return f"{self.table}_1m"


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """How a stream's events are parsed and, when kept, stored raw."""

    name: str
    version: str
    time: str
    dims: tuple[str, ...]
    measures: tuple[str, ...]
    user: str | None
    insert_id: str | None
    raw_table: str | None
    raw_ttl_seconds: int | None
    max_lateness_seconds: int
    max_future_seconds: int
    sessions: SessionPlan | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The result of :func:`rta.compiler.compile`: DDL, the flow and what queries need."""

    definitions: Definitions
    streams: tuple[StreamPlan, ...]
    rollups: tuple[RollupPlan, ...]
    ddl: tuple[exp.Expr, ...]

    @property
    def flow(self) -> tuple[FlowStep, ...]:
        """The dataflow's steps: what build_dataflow builds and flow_text prints, derived from the
        streams and rollups, so a plan changed with ``dataclasses.replace`` never carries stale steps."""
        from rta.compiler.flow_steps import flow_of  # flow_steps reads this module's plans

        return flow_of(self.streams, self.rollups)

    def ddl_sql(self) -> str:
        """Every DDL statement as ClickHouse SQL, separated by semicolons."""
        return "".join(s.sql(dialect="clickhouse", pretty=True) + ";\n\n" for s in self.ddl).rstrip() + "\n"

    def flow_text(self) -> str:
        """The dataflow steps, one per line (a step may add lines: a rollup's parts, each stream parsed)."""
        rows = [row for s in self.flow for row in s.rows()]
        width = max(len(step) for step, _, _ in rows)
        return "".join(f"{step:<{width}}  {op:<10} {detail}\n" for step, op, detail in rows)

    def alerts_text(self) -> str:
        """The alert rules, one per line: what they watch and where they notify."""
        lines = []
        for rule in self.definitions.alerts:
            split = f" by {', '.join(rule.by)}" if rule.by else ""
            hold = f" for {rule.pending // 60}m" if rule.pending else ""
            lines.append(f"{rule.name}: {rule.condition.describe()}{split}{hold} -> {', '.join(str(c) for c in rule.notify)}\n")
        return "".join(lines)

    def dashboards_text(self) -> str:
        """The dashboards (filters, range, each panel with what it shows) and the scheduled reports."""
        lines = []
        for board in self.definitions.dashboards:
            filters = f" filtered by {', '.join(board.filters)}" if board.filters else ""
            lines.append(f"{board.name} ({board.title}): last {board.last}, grain {board.grain}, refresh {board.refresh}s{filters}\n")
            for panel in board.panels:
                split = f" by {panel.by} top {panel.top}" if panel.by else f" top {panel.top}" if panel.paths else ""
                compare = " vs previous period" if panel.compare else ""
                shows = panel.funnel or panel.retention or panel.paths or ", ".join(panel.metrics)
                lines.append(f"  {panel.kind} {panel.title!r}: {shows}{split}{compare}\n")
        for r in self.definitions.reports:
            when = "hourly" if r.every == "1h" else f"every {r.every} at {r.at} {r.tz}"
            extras = "".join(f", {d} in {list(v)}" for d, v in r.where) + (", pdf" if r.pdf else "")
            sent = ", ".join(str(c) for c in r.notify) or "files only"
            lines.append(f"report {r.name}: dashboard {r.dashboard} {when}, last {r.last or 'as the dashboard'}{extras} -> {sent}\n")
        return "".join(lines)

    def stream(self, name: str) -> StreamPlan:
        """The plan of stream ``name``."""
        return next(s for s in self.streams if s.name == name)

    def rollups_of(self, stream: str) -> tuple[RollupPlan, ...]:
        """Rollups fed by ``stream``."""
        return tuple(r for r in self.rollups if r.stream == stream)

    def __str__(self) -> str:
        alerts = f"\n-- Alerts\n{self.alerts_text()}" if self.definitions.alerts else ""
        boards = f"\n-- Dashboards\n{self.dashboards_text()}" if self.definitions.dashboards or self.definitions.reports else ""
        return f"-- DDL\n{self.ddl_sql()}\n-- Flow\n{self.flow_text()}{alerts}{boards}"

    def _repr_markdown_(self) -> str:
        return f"```sql\n{self.ddl_sql()}```\n\n```\n{self.flow_text()}```\n"
