"""Session metrics from the flow's visits equal the same metrics computed from the oracle's sessions."""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest

import rta
from rta.errors import QueryError
from rta.flows.runner import run_flow
from rta.flows.sessions import SessionSpec
from rta.testing import BatchSource, frame_batches, oracle_sessions
from tests.test_sessions import MINUTE, T0, WEB, _flow_frame, arrive, visitors

pytestmark = [pytest.mark.store, pytest.mark.flow]
SPEC = SessionSpec(30 * MINUTE, 24 * 3_600_000, 20 * MINUTE, ("source", "country"), "path")
NOW = T0 + timedelta(days=3)


@pytest.fixture(scope="module")
def web(_session_client, store_dsn, tmp_path_factory):
    from tests.conftest import clear_store

    clear_store(_session_client)
    project = tmp_path_factory.mktemp("web")
    (project / "metrics").mkdir()
    (project / "metrics" / "web.py").write_text(WEB)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RTA_CLICKHOUSE_DSN", store_dsn)
        ws = rta.connect(project)
    events = visitors(21, people=150)
    frames = [_flow_frame(b) for b in arrive(events, SPEC, 21, max_batch=500)]
    run_flow(ws.plan, BatchSource(frame_batches("web", frames)), ws.client, clock=lambda: NOW)
    visits = oracle_sessions(events, gap_ms=SPEC.gap_ms, max_ms=SPEC.max_ms, dims=SPEC.dims)
    return ws, visits


def expected(visits: pl.DataFrame, grain: str | None, by: list[str], keep: pl.Expr | None = None) -> pl.DataFrame:
    """The metrics, brute force in Python, per bucket of the visit's start (``grain``; None: the whole range)."""
    rows = (visits if keep is None else visits.filter(keep)).to_dicts()
    groups: dict[tuple, list[dict]] = {}
    step = {"1m": 60, "1h": 3600, "1d": 86400}.get(grain or "", 0)
    for v in rows:
        bucket = v["start"].timestamp() // step * step if step else None
        groups.setdefault((bucket, *(v[b] for b in by)), []).append(v)
    out = []
    for key, group in groups.items():
        durations = [(v["end"] - v["start"]).total_seconds() for v in group]
        bounces = sum(1 for v, d in zip(group, durations, strict=True) if v["pages"] <= 1 and v["interactions"] == 0 and d < 10)
        out.append({
            "bucket": key[0], **dict(zip(by, key[1:], strict=True)), "visits": len(group), "bounces": bounces,
            "bounce_rate": bounces / len(group), "visit_duration": sum(durations) / len(group),
            "median_visit_duration": statistics.median(durations), "pages_per_visit": sum(v["pages"] for v in group) / len(group),
        })  # fmt: skip
    return pl.DataFrame(out).sort(["bucket", *by])


METRICS = ["visits", "bounces", "bounce_rate", "visit_duration", "median_visit_duration", "pages_per_visit"]


def _compare(got: pl.DataFrame, want: pl.DataFrame, by: list[str], bucketed: bool, metrics: list[str] = METRICS) -> None:
    got = got.filter(pl.col("visits") > 0)  # filled buckets hold no visit
    keys = (["bucket"] if bucketed else []) + by
    got = got.with_columns((pl.col("bucket").dt.epoch("s").cast(pl.Float64)).alias("bucket")) if bucketed else got
    want = want if bucketed else want.drop("bucket")
    assert got.height == want.height
    joined = want.join(got, on=keys, how="left", suffix="_got", nulls_equal=True)
    for m in metrics:
        assert joined[f"{m}_got"].to_list() == pytest.approx(joined[m].to_list(), rel=1e-9), m


@pytest.mark.parametrize(("grain", "by"), [("1h", []), ("1m", ["source"]), ("1d", ["country", "source"]), ("1h", ["entry"])])
def test_each_metric_at_each_grain_and_split_equals_the_oracle(web, grain, by):
    ws, visits = web
    got = ws.query(METRICS, start=T0, end=NOW, grain=grain, by=by, now=NOW)
    oracle = visits.rename({"entry": "entry"}).with_columns(pl.col("entry").fill_null("")) if "entry" in by else visits
    want = expected(oracle, grain, by)
    if "entry" in by:
        got = got.with_columns(pl.col("entry").fill_null(""))
    _compare(got, want, by, bucketed=True)


@pytest.mark.parametrize(("grain", "by", "where"), [("1h", [], None), ("1m", ["source"], None), ("1d", ["country"], {"source": "Google"})])
def test_the_rollup_of_signed_visit_sums_answers_what_adds_up_and_equals_the_oracle(web, grain, by, where):
    from rta.query.request import QueryRequest
    from rta.query.session_metrics import make_session_query, rolled_up, session_sql, session_stream

    ws, visits = web
    sums = [m for m in METRICS if m != "median_visit_duration"]
    plan = session_stream(ws.plan).sessions
    q = make_session_query(ws.plan, QueryRequest.of(sums, start=T0, end=NOW, grain=grain, by=by, where=where), now=NOW)
    assert rolled_up(plan, q) and plan.rollup in session_sql(plan, q, totals=False)[0].sql(dialect="clickhouse")
    assert not rolled_up(plan, replace(q, metrics=("median_visit_duration",))) and not rolled_up(plan, replace(q, by=("entry",)))
    retracted = ws.sql(f"SELECT countIf(sign = -1) AS n FROM {plan.table}")["n"][0]
    assert retracted > 0  # late events replaced visits: the sums hold -1 rows too
    got = ws.query(sums, start=T0, end=NOW, grain=grain, by=by, where=where, now=NOW)
    keep = None if where is None else pl.col("source") == "Google"
    _compare(got, expected(visits, grain, by, keep), by, bucketed=True, metrics=sums)


def test_a_filter_and_a_total_over_the_range(web):
    ws, visits = web
    got = ws.query(METRICS, start=T0, end=NOW, grain="total", by="country", where={"source": "Google"}, now=NOW)
    _compare(got, expected(visits, None, ["country"], pl.col("source") == "Google"), ["country"], bucketed=False)
    [total] = ws.query("visits", start=T0, end=NOW, grain="total", now=NOW)["visits"].to_list()
    assert total == visits.height > 300


def test_top_groups_and_the_errors_name_what_visits_have(web):
    ws, visits = web
    top = ws.query("visits", start=T0, end=NOW, grain="total", by="country", top=2, now=NOW)
    counts = visits.group_by("country").len().sort("len", descending=True).head(2)
    assert top.select("country", "visits").rows() == counts.rows()
    with pytest.raises(QueryError, match="visits have source, country, entry, exit"):
        ws.query("visits", last="1d", by="device", now=NOW)
    with pytest.raises(QueryError, match=r"ask session metrics \(visits\) apart from event metrics \(views\)"):
        ws.query(["visits", "views"], last="1d", now=NOW)
    day, end = T0 + timedelta(hours=14), T0 + timedelta(hours=38)  # visits start from 09:00 on the first day to 11:30 on the next
    compared = ws.query(["visits", "bounce_rate"], start=day, end=end, grain="total", compare="previous_day", by="source", now=NOW)
    earlier = ws.query(["visits", "bounce_rate"], start=day - timedelta(days=1), end=day, grain="total", by="source", now=NOW)
    joined = compared.join(earlier, on="source", suffix="_then")
    assert joined.height > 1 and joined["visits_previous"].to_list() == joined["visits_then"].to_list()
    assert joined["bounce_rate_previous"].to_list() == pytest.approx(joined["bounce_rate_then"].to_list())
    series = ws.query("visits", start=day, end=end, grain="1h", compare="previous_period", now=NOW)
    before = ws.query("visits", start=day - timedelta(days=1), end=day, grain="1h", now=NOW)
    assert series["visits_previous"].sum() == before["visits"].sum() > 0


def test_rest_and_remote_answer_session_metrics_as_the_workspace_does(web):
    import json
    import urllib.parse
    import urllib.request

    from rta.workspace.owner import RUN_FILE
    from rta.workspace.remote import RemoteWorkspace

    ws, _ = web
    url = ws.serve()
    try:
        key = json.loads((ws.project.root / RUN_FILE).read_text())["key"]
        remote = RemoteWorkspace(ws.project, url, key, "the test's workspace")
        options = {"start": T0, "end": NOW, "grain": "total", "by": "source", "now": NOW}
        assert remote.query(METRICS, **options).drop("final").equals(ws.query(METRICS, **options).drop("final"))
        query = urllib.parse.urlencode(
            {"metrics": "visits", "by": "entry", "grain": "total", "start": T0.isoformat(), "end": NOW.isoformat()}
        )
        request = urllib.request.Request(f"{url}/v1/query?{query}", headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(request) as response:
            body = json.loads(response.read())
        want = ws.query("visits", start=T0, end=NOW, grain="total", by="entry", now=NOW)
        assert sorted((r["entry"] or "", r["visits"]) for r in body["data"]) == sorted(
            (e or "", v) for e, v in want.select("entry", "visits").rows()
        )
        bad = urllib.request.Request(f"{url}/v1/query?metrics=visits&by=device", headers={"Authorization": f"Bearer {key}"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad)
        assert refused.value.code == 400 and b"visits have source" in refused.value.read()
    finally:
        ws.stop_serving()


def test_a_store_made_before_the_rollup_has_it_filled_from_its_visits_once(web):
    from rta.query.session_metrics import session_stream
    from rta.store.schema import apply

    ws, visits = web
    plan = session_stream(ws.plan).sessions
    total = f"SELECT sum(visits_n) AS n FROM {plan.rollup}"
    assert ws.sql(total)["n"][0] == visits.height
    ws.client.command(f"DROP VIEW {plan.rollup}_mv")
    ws.client.command(f"DROP TABLE {plan.rollup}")
    apply(ws.plan, ws.client)
    apply(ws.plan, ws.client)  # every start applies the schema: the backfill runs only when the rollup is new
    assert ws.sql(total)["n"][0] == visits.height
    got = ws.query("bounce_rate", start=T0, end=NOW, grain="total", cache=False, now=NOW)
    assert got["bounce_rate"][0] == pytest.approx(expected(visits, None, [])["bounce_rate"][0], rel=1e-9)
