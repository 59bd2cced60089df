"""rta: real-time analytics with metrics as code."""

from rta.dsl import alert as alert
from rta.dsl import average as average
from rta.dsl import breakdown as breakdown
from rta.dsl import col as col
from rta.dsl import count as count
from rta.dsl import dashboard as dashboard
from rta.dsl import distinct as distinct
from rta.dsl import email as email
from rta.dsl import funnel as funnel
from rta.dsl import funnel_bars as funnel_bars
from rta.dsl import kpi as kpi
from rta.dsl import maximum as maximum
from rta.dsl import metric as metric
from rta.dsl import minimum as minimum
from rta.dsl import no_events as no_events
from rta.dsl import paths as paths
from rta.dsl import paths_flow as paths_flow
from rta.dsl import quantile as quantile
from rta.dsl import report as report
from rta.dsl import retention as retention
from rta.dsl import retention_heatmap as retention_heatmap
from rta.dsl import rollup as rollup
from rta.dsl import sessions as sessions
from rta.dsl import slack as slack
from rta.dsl import stream as stream
from rta.dsl import table as table
from rta.dsl import timeseries as timeseries
from rta.dsl import total as total
from rta.dsl import webhook as webhook

__all__ = [
    "breakdown",
    "dashboard",
    "funnel_bars",
    "kpi",
    "paths_flow",
    "retention_heatmap",
    "table",
    "timeseries",
    "alert",
    "average",
    "connect",
    "col",
    "count",
    "distinct",
    "email",
    "funnel",
    "maximum",
    "metric",
    "minimum",
    "no_events",
    "paths",
    "quantile",
    "report",
    "retention",
    "rollup",
    "sessions",
    "slack",
    "stream",
    "total",
    "webhook",
]


def __getattr__(name: str) -> object:
    # The store and query layers load only when used: defining metrics stays light.
    if name == "connect":
        from rta.workspace import connect

        return connect
    msg = f"module 'rta' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
