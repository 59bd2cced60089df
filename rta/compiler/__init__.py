"""``compile(definitions) -> Plan``: a pure function, no I/O, no clock."""

from __future__ import annotations

import math

from rta.compiler import ddl, people_ddl, sessions_ddl
from rta.compiler.aggregations import parts_of
from rta.compiler.naming import table_name, version_of
from rta.compiler.plan import GrainTable, Part, Plan, RollupPlan, SessionPlan, StreamPlan
from rta.compiler.sessions_ddl import SESSION_METRIC_UNITS
from rta.dsl.alert import Alert
from rta.dsl.dashboard import Dashboard, Panel
from rta.dsl.definitions import Definitions
from rta.dsl.durations import GRAINS, parse_duration
from rta.dsl.funnel import check_funnel_field
from rta.dsl.person_fields import check_person_field
from rta.dsl.rollup import Rollup
from rta.dsl.schedule import ReportSchedule
from rta.dsl.stream import Stream
from rta.errors import CompilationError, DefinitionError, did_you_mean

__all__ = ["Plan", "compile"]

MAX_FUTURE_SECONDS = 3600


def _stream_plan(stream: Stream) -> StreamPlan:
    measures = stream.measure_names()
    version = version_of(stream.time, stream.dimensions, stream.measures, stream.user, stream.insert_id)
    raw = table_name(stream.name, "raw", version) if stream.keep_raw else None
    return StreamPlan(
        name=stream.name,
        version=version,
        time=stream.time,
        dims=stream.dimensions,
        measures=measures,
        user=stream.user,
        insert_id=stream.insert_id,
        raw_table=raw,
        raw_ttl_seconds=parse_duration(stream.keep_raw) if stream.keep_raw else None,
        max_lateness_seconds=parse_duration(stream.max_lateness),
        max_future_seconds=MAX_FUTURE_SECONDS,
        sessions=_session_plan(stream, version),
    )


SESSIONS_KEPT_SECONDS = 400 * 86400  # visits outlive raw events: they are what web dashboards read


def _session_plan(stream: Stream, version: str) -> SessionPlan | None:
    if stream.session is None:
        return None
    gap, longest, lateness = stream.session.seconds()
    dims = tuple(d for d in stream.dimensions if d not in ("event", "path"))  # entry and exit pages stand for the path
    path = "path" if "path" in stream.dimensions else None
    table = table_name(stream.name, "sessions", version_of(version, gap, longest, dims, path))
    return SessionPlan(table, gap, longest, lateness, dims, path, SESSIONS_KEPT_SECONDS)


def _rollup_plan(rollup: Rollup) -> RollupPlan:
    parts: list[Part] = []
    for m in rollup.metrics:
        assert m.aggregation is not None  # rollups hold stored metrics only
        for kind, flow_op in parts_of(m.aggregation):
            parts.append(Part(f"{m.name}__{kind.suffix}", m.name, kind, flow_op, m.aggregation.field, m.where))
    # Retention is left out of the version: changing it alters TTLs in place, not results.
    version = version_of(rollup.stream.name, rollup.by, rollup.grains, tuple(parts))
    tables = tuple(
        GrainTable(g, table_name(rollup.name, g, version), table_name(rollup.name, g, "mv", version), parse_duration(keep))
        for g, keep in rollup.keep
    )
    return RollupPlan(
        name=rollup.name,
        stream=rollup.stream.name,
        version=version,
        dims=rollup.by,
        input_table=table_name(rollup.name, "in", version),
        tables=tables,
        parts=tuple(parts),
    )


def compile(definitions: Definitions) -> Plan:  # noqa: A001 - the compiler's one verb
    """Compile definitions to DDL, the dataflow and what queries need.

    >>> from rta import stream, metric, rollup, count
    >>> from rta.dsl import definitions
    >>> events = stream("events", dimensions={"country": str})
    >>> views = metric("views", count(), stream=events)
    >>> plan = compile(definitions([rollup("traffic", [views], by=["country"], keep={"1h": "90d"})]))
    >>> [t.table for t in plan.rollups[0].tables]
    ['rta_traffic_1h_...']
    """
    stored = {m.name for r in definitions.rollups for m in r.metrics}
    for m in definitions.metrics:
        missing = [b.name for b in m.base_metrics() if b.name not in stored]
        if missing:
            msg = (
                f"metric {m.name!r} cannot be answered: {', '.join(repr(x) for x in missing)} "
                "is in no rollup; add it to a rollup, e.g. rollup('traffic', [...], by=[...])"
            )
            raise CompilationError(msg)
    for rule in definitions.alerts:
        _check_alert(definitions, rule)
    streams = tuple(_stream_plan(s) for s in definitions.streams)
    visits = next((s.sessions for s in streams if s.sessions is not None), None)
    for board in definitions.dashboards:
        _check_dashboard(definitions, board, visits)
    for schedule in definitions.reports:
        _check_report(definitions, schedule)
    rollups = tuple(_rollup_plan(r) for r in definitions.rollups)
    statements = [ddl.stats_table()]
    statements += [ddl.raw_table(s) for s in streams if s.raw_table]
    for visits in (s.sessions for s in streams if s.sessions):
        statements += [sessions_ddl.sessions_table(visits), sessions_ddl.rollup_table(visits), sessions_ddl.rollup_view(visits)]
    for r in rollups:
        statements.append(ddl.input_table(r))
        for t in r.tables:
            statements += [ddl.grain_table(r, t), ddl.grain_view(r, t)]
    if definitions.alerts:
        statements += ddl.alert_tables()
    if people_ddl.has_people(streams):
        statements += people_ddl.people_tables()
    return Plan(definitions, streams, rollups, tuple(statements))


def _check_alert(definitions: Definitions, rule: Alert) -> None:
    """Every part of an alert's metric must be in a rollup with its dimensions at a grain that tiles its windows."""
    metric = rule.window.metric
    if metric is None:
        return
    step = math.gcd(rule.window.seconds, rule.every, rule.window.shift or 0)
    dims = set(rule.by) | (set(rule.where.fields()) if rule.where is not None else set())
    for base in metric.base_metrics():
        if not any(base in r.metrics and dims <= set(r.by) and any(step % GRAINS[g] == 0 for g in r.grains) for r in definitions.rollups):
            msg = (
                f"alert {rule.name!r} cannot be evaluated: no rollup holds {base.name!r} by {sorted(dims) or 'nothing'} "
                f"at a grain that divides {step // 60} minute(s) (its window, every= and baseline); "
                "add one, or make the window and every= whole hours"
            )
            raise CompilationError(msg)


def _check_dashboard(definitions: Definitions, board: Dashboard, visits: SessionPlan | None = None) -> None:
    """Every panel must be answerable from rollups under any combination of the dashboard's filters and drill-downs
    (a session metric, from the visits of the stream that declares them: ``visits``)."""
    owner = f"dashboard {board.name!r}"
    for panel in board.panels:
        if panel.funnel is not None:
            _check_funnel_panel(definitions, board, panel)
        if panel.retention is not None or panel.paths is not None:
            _check_person_panel(definitions, board, panel)
        for name in panel.metrics:
            if name in SESSION_METRIC_UNITS and name not in {m.name for m in definitions.metrics} and visits is not None:
                _check_session_panel(board, panel, name, visits)
                continue
            try:
                metric = definitions.metric(name)
            except DefinitionError as err:
                msg = f"{owner}, panel {panel.title!r}: {err}"
                raise CompilationError(msg) from None
            # Clicking a bar or a row filters by its dimension too: every panel must answer under all of them.
            dims = set(board.dimensions())
            streams = {b.stream.name: b.stream for b in metric.base_metrics() if b.stream}
            for stream in streams.values():
                unknown = sorted(dims - set(stream.dimensions))
                if unknown:
                    hint = did_you_mean(unknown[0], list(stream.dimensions))
                    msg = f"{owner}, panel {panel.title!r}: {unknown[0]!r} is not a dimension of stream {stream.name!r}; {hint}"
                    raise CompilationError(msg)
            for base in metric.base_metrics():
                if not any(base in r.metrics and dims <= set(r.by) for r in definitions.rollups):
                    msg = (
                        f"{owner}, panel {panel.title!r}: no rollup holds {base.name!r} by {sorted(dims) or 'nothing'} "
                        "(the dashboard's filters and drill-down dimensions); add those dimensions to a rollup of it, or drop the filter"
                    )
                    raise CompilationError(msg)


def _check_session_panel(board: Dashboard, panel: Panel, name: str, visits: SessionPlan) -> None:
    """A session metric splits and filters by what visits have: their first event's dimensions, entry and exit pages."""
    fields = sessions_ddl.split_fields(visits)
    unknown = [d for d in board.dimensions() if d not in fields]
    if unknown:
        msg = (
            f"dashboard {board.name!r}, panel {panel.title!r}: {name} (a session metric) cannot be split or filtered by {unknown[0]!r}; "
            f"visits have {', '.join(fields)}; {did_you_mean(unknown[0], list(fields))}"
        )
        raise CompilationError(msg)


def _check_funnel_panel(definitions: Definitions, board: Dashboard, panel: Panel) -> None:
    """A funnel panel draws a declared funnel, filtered and split by the dashboard's dimensions: each must be a field of its stream."""
    owner = f"dashboard {board.name!r}, panel {panel.title!r}"
    try:
        found = definitions.funnel(panel.funnel or "")
        for dim in board.dimensions():
            check_funnel_field(found.stream, dim, f"{owner} (funnel {found.name!r})")
    except DefinitionError as err:
        msg = str(err) if str(err).startswith(owner) else f"{owner}: {err}"
        raise CompilationError(msg) from None


def _check_person_panel(definitions: Definitions, board: Dashboard, panel: Panel) -> None:
    """A retention or paths panel draws a declared definition, filtered by the dashboard's dimensions: each a field of its stream."""
    owner = f"dashboard {board.name!r}, panel {panel.title!r}"
    try:
        found = definitions.retention(panel.retention) if panel.retention is not None else definitions.path(panel.paths or "")
        for dim in board.dimensions():
            check_person_field(found.stream, dim, f"{owner} ({panel.kind} {found.name!r})")
    except DefinitionError as err:
        msg = str(err) if str(err).startswith(owner) else f"{owner}: {err}"
        raise CompilationError(msg) from None


def _check_report(definitions: Definitions, schedule: ReportSchedule) -> None:
    """A scheduled report names a dashboard of the project and filters only by its dimensions."""
    try:
        board = definitions.dashboard(schedule.dashboard)
    except DefinitionError as err:
        msg = f"report {schedule.name!r}: {err}"
        raise CompilationError(msg) from None
    for dim, _ in schedule.where:
        if dim not in board.dimensions():
            hint = did_you_mean(dim, list(board.dimensions()))
            msg = f"report {schedule.name!r}: dashboard {board.name!r} cannot filter by {dim!r}; {hint}"
            raise CompilationError(msg)
