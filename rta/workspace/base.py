"""What every workspace offers, written once over a few primitives, so a notebook works the same
whether it holds the store (:class:`~rta.workspace.workspace.Workspace`) or asks the process that
does (:class:`~rta.workspace.remote.RemoteWorkspace`, while ``rta run`` or another kernel owns it).

The primitives a workspace supplies: ``answer`` (a metric query), ``explain``, ``sql`` (the
console), ``read`` (a statement rta built, run read-only), ``freshness``, ``load``, ``load_demo``.
Everything else here is built on them: the ad-hoc builders, alerts, dashboards, reports,
arrivals, the data version and the reprs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import polars as pl

from rta.compiler.ddl import STATS_TABLE
from rta.compiler.plan import Plan, StreamPlan
from rta.dsl.shown import block, card, listed
from rta.errors import QueryError
from rta.project import Project
from rta.query.adhoc import AdhocQuery, events_query, rollup_query
from rta.query.funnel_answer import FunnelExplanation, answer_funnel, explain_funnel
from rta.query.paths_answer import answer_paths, explain_paths
from rta.query.people import PeopleQuery, Person, person
from rta.query.person_answer import PersonExplanation
from rta.query.person_request import FunnelRequest, PathsRequest, PersonRequest, RetentionRequest
from rta.query.properties import properties as stream_properties
from rta.query.protocol import Answer, Explanation, Freshness
from rta.query.request import Asked
from rta.query.result import MetricFrame
from rta.query.retention_answer import answer_retention, explain_retention

# The write time alone can repeat (a backfill on a fixed clock); the tally cannot.
VERSION_SQL = f"SELECT toUnixTimestamp(max(last_seen)) AS written, sum(events) AS events FROM {STATS_TABLE}"

R = TypeVar("R", bound=PersonRequest)

if TYPE_CHECKING:
    from rta.alerts.view import WorkspaceAlerts
    from rta.dash.export import ReportFiles
    from rta.dash.widget import DashboardWidget


class WorkspaceBase(ABC):
    """A project's metrics and store: queries, ad-hoc builders, alerts, dashboards, reports."""

    project: Project

    # --- primitives --------------------------------------------------------------------------

    @abstractmethod
    def answer(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> Answer:
        """Like :meth:`query`, with the checked query and whether the cache answered."""

    @abstractmethod
    def cached_answer(self, metrics: Asked, **options: object) -> Answer | None:
        """The answer if this process has it cached, without touching the store (never blocks)."""

    @abstractmethod
    def explain(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> Explanation:
        """Answer the query and tell which tables served it, what they read, how long it took."""

    @abstractmethod
    def sql(self, text: str) -> pl.DataFrame:
        """Run one read-only SELECT over the project's tables (stream names stand for raw events,
        ``<rollup>_<grain>`` for rollup tables) with time, row and memory limits."""

    @abstractmethod
    def read(self, sql: str, params: Mapping[str, object]) -> pl.DataFrame:
        """Run a read-only statement rta built itself (values bound as ``{name:Type}`` parameters)."""

    @abstractmethod
    def freshness(self, now: datetime | None = None, *, stream: str | None = None) -> Freshness:
        """When the flow last wrote and how far its event-time watermark has come (of one stream, or all)."""

    @abstractmethod
    def load(self, events: pl.DataFrame | str | Path | list[str | Path], *, stream: str | None = None) -> str:
        """Run events through the flow into the store; loading the same events again adds nothing."""

    @abstractmethod
    def load_demo(self, events: int = 100_000, *, days: int = 7, seed: int = 1, now: datetime | None = None) -> str:
        """Load synthetic shop traffic; the same call run again adds nothing."""

    # --- built on them ---------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        """The compiled plan."""
        return self.project.plan

    def query(self, metrics: Asked, *, cache: bool = True, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """Metrics by bucket (and dimensions) as a Polars frame, with a ``final`` column.

        Options (:class:`rta.query.request.QueryRequest`): ``last="7d"`` or ``start=``/``end=``,
        ``grain="auto"|"1m"|"1h"|"1d"|"total"`` (total: one row per group over the range),
        ``by=[dims]``, ``where={dim: value | [values]}`` or a filter such as
        ``col("country").isin(["US", "DE"]) & ~(col("device") == "bot")``,
        ``compare="previous_period"|"previous_day"|"previous_week"|"previous_year"``, ``top=N``
        (with ``by``), ``order_by=metric``, ``fill_gaps=True``.
        """
        answer = self.answer(metrics, cache=cache, now=now, **options)
        frame = MetricFrame(answer.frame)
        frame.notice = answer.notice
        return frame

    @property
    def events(self) -> AdhocQuery:
        """An ad-hoc query over the (only) stream's raw events; see :meth:`stream` for several."""
        if len(self.plan.streams) != 1:
            msg = f"the project has streams {[s.name for s in self.plan.streams]}; pick one with ws.stream(name)"
            raise QueryError(msg)
        return self.stream(self.plan.streams[0].name)

    def stream(self, name: str) -> AdhocQuery:
        """An ad-hoc query over a stream's raw events."""
        self.project.definitions.stream(name)
        stream = self.plan.stream(name)
        return events_query(self.plan, stream, self.read, self._property_columns(stream))

    def _property_columns(self, stream: StreamPlan) -> frozenset[str]:
        """The raw table's materialized property columns; a workspace asking another process knows none (the maps answer)."""
        return frozenset()

    def properties(self, stream: str | None = None, *, now: datetime | None = None) -> pl.DataFrame:
        """Every property of a stream's raw events over the last 7 days (or its raw retention): name (``prop.<key>``
        when undeclared), type (string, number, boolean, mixed), declared or not, events carrying it, share, examples."""
        name = stream or (self.plan.streams[0].name if len(self.plan.streams) == 1 else None)
        if name is None:
            msg = f"the project has streams {[s.name for s in self.plan.streams]}; pick one with ws.properties(stream=...)"
            raise QueryError(msg)
        self.project.definitions.stream(name)
        return stream_properties(self.plan.stream(name), self.read, now or datetime.now(UTC))

    def rollup(self, name: str, grain: str) -> AdhocQuery:
        """An ad-hoc query over one rollup table; aggregate metrics by name."""
        return rollup_query(self.plan, name, grain, self.read)

    def person(self, person_id: str, *, limit: int = 100) -> Person:
        """A person: ids (their user id and the anonymous ids aliased to it), traits (latest per key),
        first and last seen, and their newest ``limit`` events as a timeline."""
        return person(self.plan, self.read, person_id, limit=limit)

    def funnel(self, name: str | FunnelRequest, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """A declared funnel over raw events: one row per step (and ``by`` group) with the people entering it,
        ``conversion`` (of step 1), ``step_conversion`` (of the step before), ``drop_off``, and the median and p90
        seconds from the step before. People are counted exactly, aliased anonymous ids as their user.

        Options (:class:`rta.query.funnel_request.FunnelRequest`): ``last="7d"`` or ``start=``/``end=``,
        ``by=`` (dimensions, ``prop.<key>``, ``person.<trait>``; read at the first step; default the funnel's),
        ``where=`` (a filter of the events, or ``{field: value}``). ``ws.funnel("checkout", last="7d", by="device")``.
        """
        return answer_funnel(self.plan, self.read, self._funnel_request(name, options), now)

    def explain_funnel(self, name: str | FunnelRequest, *, now: datetime | None = None, **options: object) -> FunnelExplanation:
        """Run a funnel and say what ran: its SQL, the raw events it scans (ClickHouse's estimate) and the time."""
        return explain_funnel(self.plan, self.read, self._funnel_request(name, options), now)

    def retention(self, name: str | RetentionRequest, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """A declared retention matrix over raw events, long: one row per cohort (and ``by`` group) and period with
        ``cohort`` (its period's start), ``cohort_size``, ``period``, ``people`` back in it and ``retention`` (the share).
        Period 0 is the cohort itself; later periods count who did the ``back`` event then (PostHog's recurring retention).
        ``rta.query.retention_answer.wide(frame)`` pivots it to one row per cohort.

        Options (:class:`rta.query.person_request.RetentionRequest`): ``last=`` (default ``every * periods``) or
        ``start=``/``end=`` (widened back to the start of the first period), ``by=``, ``where=``.
        ``ws.retention("signup_return", last="4w")``.
        """
        return answer_retention(self.plan, self.read, self._person_request(RetentionRequest, name, options), now)

    def explain_retention(self, name: str | RetentionRequest, *, now: datetime | None = None, **options: object) -> PersonExplanation:
        """Run a retention matrix and say what ran: its SQL, the raw events it scans and the time."""
        return explain_retention(self.plan, self.read, self._person_request(RetentionRequest, name, options), now)

    def paths(self, name: str | PathsRequest, *, now: datetime | None = None, **options: object) -> pl.DataFrame:
        """Declared paths over raw events: the most common sequences after each person's first anchor event, one row
        per path (and ``by`` group): ``start`` (the anchor's label), ``step_1``... (null where the path ended),
        ``people`` and ``share`` (of the people with an anchor).

        Options (:class:`rta.query.person_request.PathsRequest`): ``last="7d"`` or ``start=``/``end=``, ``by=``,
        ``where=``, ``top=20`` (paths per group). ``ws.paths("after_signup", last="7d")``.
        """
        return answer_paths(self.plan, self.read, self._person_request(PathsRequest, name, options), now)

    def explain_paths(self, name: str | PathsRequest, *, now: datetime | None = None, **options: object) -> PersonExplanation:
        """Run paths and say what ran: its SQL, the raw events it scans and the time."""
        return explain_paths(self.plan, self.read, self._person_request(PathsRequest, name, options), now)

    @staticmethod
    def _funnel_request(name: str | FunnelRequest, options: dict[str, object]) -> FunnelRequest:
        return WorkspaceBase._person_request(FunnelRequest, name, options)

    @staticmethod
    def _person_request(kind: type[R], name: str | R, options: dict[str, object]) -> R:
        return name if isinstance(name, kind) else kind.of(name, **options)

    @property
    def people(self) -> PeopleQuery:
        """People with events or traits, most recently active first: ``ws.people.where(col("person.plan") == "pro").limit(50)``."""
        return PeopleQuery(self.plan, self.read)

    @property
    def alerts(self) -> WorkspaceAlerts:
        """The project's alert rules: ``list()``, ``history()``, ``backtest(rule, last="30d")``, ``check(rule)``."""
        from rta.alerts.view import WorkspaceAlerts  # loaded only when asked: defining and querying stay light

        return WorkspaceAlerts(self)

    def dashboard(self, name: str | None = None, **view: object) -> DashboardWidget:
        """An interactive dashboard (ipywidgets + Altair, offline) of a DSL dashboard; ``last=``, ``where=``, ``grain=`` set the view."""
        from rta.dash.widget import dashboard_widget  # loaded only when asked

        return dashboard_widget(self, name, **view)

    def report(self, name: str | None = None, **options: object) -> ReportFiles:
        """Write a self-contained HTML report (``out=``, ``pdf=``, ``images=``, ``data=``, ``last=``, ``where=``)."""
        from rta.dash import export_report

        return export_report(self, name, **options)  # type: ignore[arg-type]

    def arrivals(self, stream: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Events ``stream`` accepted per minute of arrival in ``[start, end)``: columns ``bucket``, ``events``."""
        sql = (
            f"SELECT toUnixTimestamp(minute) AS t, sum(events) AS events FROM {STATS_TABLE} "
            "WHERE stream = {s:String} AND outcome = 'accepted' AND minute >= {a:DateTime('UTC')} AND minute < {b:DateTime('UTC')} "
            "GROUP BY t ORDER BY t"
        )
        params = {"s": stream, "a": start.strftime("%Y-%m-%d %H:%M:%S"), "b": end.strftime("%Y-%m-%d %H:%M:%S")}
        rows = self.read(sql, params)
        return pl.DataFrame(
            {"bucket": (rows["t"].cast(pl.Int64) * 1000).cast(pl.Datetime("ms", "UTC")), "events": rows["events"].cast(pl.Float64)},
            schema={"bucket": pl.Datetime("ms", "UTC"), "events": pl.Float64},
        )

    def data_version(self) -> object:
        """When the flow last wrote, and its tally (changes with every write)."""
        return tuple(self.read(VERSION_SQL, {}).row(0))

    # --- how it shows itself -----------------------------------------------------------------

    def _where(self) -> str:
        return "its store"

    def _summary(self) -> list[tuple[str, str]]:
        defs = self.project.definitions
        rows = [("store", self._where()), ("streams", listed(s.name for s in defs.streams))]
        kinds = (("metrics", defs.metrics), ("rollups", defs.rollups), ("dashboards", defs.dashboards), ("alerts", defs.alerts))
        rows += [(label, f"{len(items)}: {listed(i.name for i in items)}") for label, items in kinds if items]
        return rows

    def __repr__(self) -> str:
        return block(f"{type(self).__name__} {self.project.root}", [f"{label} {value}" for label, value in self._summary()])

    def _repr_html_(self) -> str:
        return card(type(self).__name__, str(self.project.root), self._summary())
