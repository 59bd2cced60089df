"""Flow throughput: rta vs the textbook Bytewax flow vs ClickHouse-native, in one run.

    python bench/flow.py [--events 1000000] [--textbook-events 100000] [--modes lines,props --peers rta --repeat 3]

Generates demo shop events as JSON lines (timestamps spread over the last ``--span`` seconds:
the default 9 s is the density of the 10-billion-events/day target, ~116K events/s; a longer
span makes more, smaller partials per event), then pushes
them into a fresh embedded ClickHouse with the `shop` example's rollups (or ``--metrics``),
each peer in its own process (one chdb data dir per process; peak memory is per peer):

- rta:        batches of JSON lines -> Polars partials -> AggregatingMergeTree (this project);
- textbook:   one event per Bytewax item, json.loads, keyed fold_window over 1-minute tumbling
              windows, writing the same partials through the same tables (on fewer events:
              it is two orders of magnitude slower);
- clickhouse: JSONEachRow inserted straight into ClickHouse, materialized views building the
              same rollup tables from raw rows (-If/-State combinators).

Each runs twice: rollups only, and keeping raw events too (ClickHouse-native keeps raw
events by nature; without them its raw table is a Null table). rta runs on the collect API's
lines too, without and with undeclared properties (``--modes``). On a shared machine, run each
mode several times (``--repeat``): runs are interleaved and the table shows medians, with the CPU
time per event of the timed part (user + system, every thread: less sensitive than the clock to other processes).

Data dirs stay until the end and runs are ``--settle`` seconds apart: on ext4 without a
journal (this machine's root), creating files within seconds of thousands being deleted scans
the deleted inodes, and the same run measured 205K events/s right after a deletion, 259K after
a pause.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "metrics" / "shop.py"
definitions = SHOP  # --metrics: another definition of the generated `events` stream


def _plan(raw: bool):  # type: ignore[no-untyped-def]
    from rta.compiler import compile
    from rta.compiler.ddl import raw_table
    from rta.project import load_definitions

    plan = compile(load_definitions((definitions,)))
    if raw:
        return plan
    streams = tuple(replace(s, raw_table=None) for s in plan.streams)
    raw_ddl = {raw_table(s).sql(dialect="clickhouse") for s in plan.streams if s.raw_table}
    return replace(plan, streams=streams, ddl=tuple(d for d in plan.ddl if d.sql(dialect="clickhouse") not in raw_ddl))


def _client(data: Path, plan):  # type: ignore[no-untyped-def]
    from rta.store.client import connect
    from rta.store.schema import apply

    client = connect("chdb://" + str(data))
    apply(plan, client)
    return client


def _cpu() -> float:
    """CPU seconds this process has used (user + system, every thread: ClickHouse's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stored(client, plan) -> int:  # type: ignore[no-untyped-def]
    """Events counted in the traffic rollup's day table (a check that every peer wrote the same)."""
    rollup = plan.rollups[0]
    table = rollup.table("1d")
    counts = " + ".join(f"sum({p.column})" for p in rollup.parts if p.flow_op == "rows")
    return int(client.query(f"SELECT {counts} FROM {table.table}").result_rows[0][0])


# --- rta -----------------------------------------------------------------------------------


def run_rta(path: Path, data: Path, raw: bool, events: int) -> dict:
    from rta.flows.runner import run_flow
    from rta.flows.sources import FileSource

    plan = _plan(raw)
    client = _client(data, plan)
    start, cpu = time.perf_counter(), _cpu()
    stats = run_flow(plan, FileSource([path], plan.streams[0]), client)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"events": stats.events_in, "seconds": seconds, "cpu": cpu, "stored": _stored(client, plan)}


# --- the textbook flow: one event per item, keyed tumbling windows ---------------------------


def _python_filter(node):  # type: ignore[no-untyped-def]
    import operator

    from rta.dsl import expr as ex

    ops = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
    match node:
        case None:
            return lambda e: True
        case ex.Compare(field=f, op=o, value=v):
            return lambda e: e.get(f) is not None and ops[o](e.get(f), v)
        case ex.IsIn(field=f, values=vs):
            return lambda e: e.get(f) in vs
        case ex.And(left=a, right=b):
            fa, fb = _python_filter(a), _python_filter(b)
            return lambda e: fa(e) and fb(e)
        case ex.Or(left=a, right=b):
            fa, fb = _python_filter(a), _python_filter(b)
            return lambda e: fa(e) or fb(e)
        case ex.Not(operand=o):
            fo = _python_filter(o)
            return lambda e: not fo(e)
    raise TypeError(node)


def run_textbook(path: Path, data: Path, raw: bool, events: int) -> dict:
    from datetime import UTC, datetime, timedelta

    import bytewax.operators as op
    import bytewax.operators.windowing as win
    import polars as pl
    from bytewax.dataflow import Dataflow
    from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
    from bytewax.outputs import DynamicSink, StatelessSinkPartition
    from bytewax.testing import run_main

    from rta.store.writer import Write, insert

    plan = _plan(raw)
    client = _client(data, plan)
    stream = plan.streams[0]

    class Lines(StatefulSourcePartition):
        def __init__(self) -> None:
            self._file = path.open("rb")
            self._left = events

        def next_batch(self):  # type: ignore[no-untyped-def]
            lines = [line for line in (self._file.readline() for _ in range(min(1000, self._left))) if line]
            if not lines:
                raise StopIteration
            self._left -= len(lines)
            return lines

        def snapshot(self) -> None:
            return None

    class LineSource(FixedPartitionedSource):
        def list_parts(self):  # type: ignore[no-untyped-def]
            return ["file"]

        def build_part(self, step_id, for_part, resume_state):  # type: ignore[no-untyped-def]
            return Lines()

    class Batching(StatelessSinkPartition):
        """Even the textbook flow batches its inserts (10K rows); per-row inserts manage ~65/s."""

        def __init__(self) -> None:
            self.rows: dict[str, list[dict]] = {}

        def write_batch(self, items):  # type: ignore[no-untyped-def]
            for table, row in items:
                self.rows.setdefault(table, []).append(row)
                if len(self.rows[table]) >= 10_000:
                    self._flush(table)

        def _flush(self, table: str) -> None:
            rows = self.rows.pop(table, [])
            if rows:
                frame = pl.DataFrame(rows, schema_overrides={"minute": pl.Datetime("ms", "UTC")}, infer_schema_length=None)
                insert(client, Write(table, frame.to_arrow(), f"textbook-{time.time_ns()}"))

        def close(self) -> None:
            for table in list(self.rows):
                self._flush(table)

    class Sink(DynamicSink):
        def build(self, step_id, worker_index, worker_count):  # type: ignore[no-untyped-def]
            return Batching()

    late = {"n": 0}
    flow = Dataflow("textbook")
    parsed = op.map("json", op.input("lines", flow, LineSource()), json.loads)
    timed = op.map("time", parsed, lambda e: {**e, "_ts": datetime.fromisoformat(e["timestamp"])})
    clock = win.EventClock(lambda e: e["_ts"], wait_for_system_duration=timedelta(minutes=5))
    windower = win.TumblingWindower(length=timedelta(minutes=1), align_to=datetime(2020, 1, 1, tzinfo=UTC))
    outputs = []
    for rollup in plan.rollups:
        parts = [(p.column, p.flow_op, p.field, _python_filter(p.where)) for p in rollup.parts]
        dims = rollup.dims

        def folder(acc, e, parts=parts):  # type: ignore[no-untyped-def]
            for column, flow_op, field, keep in parts:
                if not keep(e):
                    continue
                value = e.get(field) if field else None
                if flow_op == "rows":
                    acc[column] += 1
                elif value is None:
                    continue
                elif flow_op == "present":
                    acc[column] += 1
                elif flow_op == "sum":
                    acc[column] += value
                elif flow_op == "min":
                    acc[column] = value if acc[column] is None else min(acc[column], value)
                elif flow_op == "max":
                    acc[column] = value if acc[column] is None else max(acc[column], value)
                elif flow_op == "unique":
                    acc[column].add(value)
                else:
                    acc[column].append(value)
            return acc

        def builder(parts=parts):  # type: ignore[no-untyped-def]
            empty = {"rows": 0, "present": 0, "sum": 0.0, "min": None, "max": None}
            return {c: set() if o == "unique" else [] if o == "values" else empty[o] for c, o, _, _ in parts}

        def merger(a, b):  # type: ignore[no-untyped-def]
            raise AssertionError("tumbling windows never merge")

        keyed = op.key_on(f"{rollup.name}_key", timed, lambda e, dims=dims: "\x1f".join(e.get(d) or "" for d in dims))
        out = win.fold_window(f"{rollup.name}_window", keyed, clock, windower, builder, folder, merger)
        op.inspect(f"{rollup.name}_late", out.late, lambda *_: late.__setitem__("n", late["n"] + 1))

        def row(item, rollup=rollup, windower=windower):  # type: ignore[no-untyped-def]
            key, (window_id, acc) = item
            minute = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(minutes=window_id)
            values = {c: list(v) if isinstance(v, set) else v for c, v in acc.items()}
            dims = dict(zip(rollup.dims, key.split("\x1f") if rollup.dims else [], strict=True))
            return rollup.input_table, {"minute": minute, **dims, **values}

        outputs.append(op.map(f"{rollup.name}_row", out.down, row))
    if stream.raw_table:
        raw_cols = [stream.time, stream.insert_id, stream.user, *stream.dims, *stream.measures]
        outputs.append(
            op.map("raw", timed, lambda e: (stream.raw_table, {c: e["_ts"] if c == stream.time else e.get(c) for c in raw_cols}))
        )
    op.output("store", op.merge("all", *outputs), Sink())
    start, cpu = time.perf_counter(), _cpu()
    run_main(flow)
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"events": events, "seconds": seconds, "cpu": cpu, "stored": _stored(client, plan), "late_dropped": late["n"]}


# --- ClickHouse-native: raw rows in, materialized views build the rollups ---------------------


def run_clickhouse(path: Path, data: Path, raw: bool, events: int) -> dict:
    import sqlglot.expressions as exp

    from rta.compiler.ddl import GrainTable, grain_table, raw_table
    from rta.compiler.sql_filter import show_filter

    plan = _plan(True)  # the raw table's schema; rollups only turn it into a Null table
    client = _client(data, _plan(False))
    stream = plan.streams[0]
    create = raw_table(stream)
    if not raw:
        create.find(exp.EngineProperty).set("this", exp.to_identifier("Null"))
        for prop in list(create.find(exp.Properties).expressions)[1:]:
            prop.pop()
    client.command(create.sql(dialect="clickhouse"))
    ts = stream.time
    start_of = {"1m": "toStartOfMinute", "1h": "toStartOfHour", "1d": "toStartOfDay"}
    for rollup in plan.rollups:
        for table in rollup.tables:
            client.command(
                grain_table(rollup, GrainTable(table.grain, table.table, table.view, table.ttl_seconds)).sql(dialect="clickhouse")
            )
            cols = []
            for p in rollup.parts:
                cond = show_filter(p.where) if p.where is not None else "1"
                sql = _native_aggregate(p.flow_op, p.field, cond, p.kind.params)
                cols.append(f"{sql} AS {p.column}")
            columns = ", ".join((*rollup.dims, *cols))
            keys = ", ".join(("bucket", *rollup.dims))
            client.command(
                f"CREATE MATERIALIZED VIEW native_{table.table} TO {table.table} AS "
                f"SELECT {start_of[table.grain]}({ts}) AS bucket, {columns} FROM {stream.raw_table} GROUP BY {keys}"
            )
    # Fields a row leaves out get their type's default: ClickHouse cannot compute the property maps'
    # DEFAULTs for such rows (they read EPHEMERAL columns), and these flat events have no properties.
    settings = {
        "input_format_skip_unknown_fields": 1,
        "date_time_input_format": "best_effort",
        "input_format_defaults_for_omitted_fields": 0,
    }
    start, cpu = time.perf_counter(), _cpu()
    with path.open("rb") as handle:
        carry = b""
        while chunk := carry + handle.read(16 * 1024 * 1024):
            cut = chunk.rfind(b"\n") + 1 or len(chunk)
            body, carry = chunk[:cut], chunk[cut:]
            client.raw_insert(stream.raw_table, insert_block=body, fmt="JSONEachRow", settings=settings)
            if not body:
                break
    seconds, cpu = time.perf_counter() - start, _cpu() - cpu
    return {"events": events, "seconds": seconds, "cpu": cpu, "stored": _stored(client, plan)}


def _native_aggregate(flow_op: str, field: str | None, cond: str, params: tuple[float, ...]) -> str:
    """The ClickHouse aggregate over raw rows that builds the same state as rta's partials."""
    present = f"{cond} AND {field} IS NOT NULL"
    match flow_op:
        case "rows":
            return f"countIf({cond})"
        case "present":
            return f"countIf({present})"
        case "sum":
            return f"sumIf(assumeNotNull({field}), {present})"
        case "min" | "max":
            return f"{flow_op}If({field}, {cond})"
        case "unique":
            return f"uniqCombined64IfState(12)(assumeNotNull({field}), {present})"
        case "values":
            return f"quantileTDigestIfState({params[0]!r})(assumeNotNull({field}), {present})"
    raise ValueError(flow_op)


RUNNERS = {"rta": run_rta, "textbook": run_textbook, "clickhouse": run_clickhouse}


def _generate(path: Path, n: int, span_ms: int) -> None:
    import numpy as np
    import polars as pl

    from rta.flows.demo import Population, generate

    rng = np.random.default_rng(1)
    pop = Population(1)
    now = int(time.time() * 1000)
    step = 100_000
    first = now - span_ms
    frames = [
        generate(pop, min(step, n - i), first + i * span_ms // n, first + (i + step) * span_ms // n, rng, f"b{i}")
        for i in range(0, n, step)
    ]
    pl.concat(frames).write_ndjson(path)


# Undeclared properties a product's events carry (PostHog's carry 20-40), for --properties: texts of
# several cardinalities and two numbers, written the way the collect API writes them.
EXTRA = (("plan", 4), ("sku", 1000), ("title", 500), ("referrer_domain", 50), ("browser_version", 30), ("experiment", 3))


def _generate_lines(path: Path, n: int, span_ms: int, properties: bool) -> None:
    """The same events as :func:`_generate`, as the collect API writes them in the log (its canonical
    lines: rta/contract/segment.py), with or without undeclared properties."""
    from datetime import UTC, datetime

    import polars as pl

    from rta.contract.properties import EMPTY, flatten, line_texts
    from rta.contract.segment import message_types

    plan = _plan(True)
    stream = plan.streams[0]
    types = message_types(stream)
    flat_path = path.with_suffix(".flat")
    _generate(flat_path, n, span_ms)
    frame = pl.read_ndjson(flat_path, infer_schema_length=None).with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC"))
    flat_path.unlink()
    declared = [c for c in (*stream.dims, *stream.measures) if c in frame.columns and c != "event"]
    with path.open("wb") as out:
        for i, row in enumerate(frame.iter_rows(named=True)):
            props = {c: row[c] for c in declared if row[c] is not None}
            extra: dict[str, object] = {}
            if properties:
                extra = {name: f"{name}-{(i * 7919 + k) % size}" for k, (name, size) in enumerate(EXTRA)}
                extra["cart"] = {"items": i % 7, "value": (i % 1000) / 10}
            texts = line_texts(flatten(extra), EMPTY)
            at = row["timestamp"] if isinstance(row["timestamp"], datetime) else datetime.fromtimestamp(0, UTC)
            line = types.line(at, row["insert_id"], "track", None, row["event"], row["user_id"], None, types.properties(**props),
                              None, None, *texts)  # fmt: skip
            out.write(types.encode(line) + b"\n")


MODES = {"rollups": 0, "raw": 1, "lines": 2, "props": 3}  # lines, props: rta only
LABELS = {0: "rollups only", 1: "rollups + raw", 2: "API lines + raw", 3: "API lines + raw + props"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--textbook-events", type=int, default=100_000)
    parser.add_argument("--span", type=float, default=9.0, help="seconds of event time the events cover")
    parser.add_argument("--peers", default="rta,textbook,clickhouse")
    parser.add_argument("--metrics", type=Path, default=SHOP, help="definitions to roll up (a stream `events` of the shop's fields)")
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="seconds to wait between runs: a run's deleted parts slow the next one's file creation on some filesystems",
    )
    parser.add_argument(
        "--properties",
        type=int,
        default=1,
        help="also run rta on the collect API's lines, without and with 8 undeclared properties per event (0: skip)",
    )
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"modes to run, of {', '.join(MODES)} (lines and props: rta on the collect API's lines, without and with properties)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each mode, interleaved; the table shows medians")
    parser.add_argument("--run", choices=list(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--raw", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global definitions  # children and the parent compile the same file
    definitions = args.metrics.resolve()

    if args.run:  # a child: one peer, one mode
        result = RUNNERS[args.run](args.file, args.data, bool(args.raw), args.events)
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s) {', '.join(sorted(unknown))}; the modes are {', '.join(MODES)}")
    modes = {MODES[m] for m in args.modes.split(",")}
    if not args.properties:
        modes -= {2, 3}
    peers = args.peers.split(",")
    work = Path(tempfile.mkdtemp(prefix="rta-bench-"))
    try:
        path = work / "events.jsonl"
        print(f"generating {args.events:,} events ...", file=sys.stderr)
        _generate(path, args.events, int(args.span * 1000))
        density = args.events / args.span
        print(f"{path.stat().st_size / 1e6:,.0f} MB of JSON lines, {density:,.0f} events per second of event time\n", file=sys.stderr)
        runs = [(raw, peer, path) for raw in (0, 1) if raw in modes for peer in peers]
        if "rta" in peers:
            for mode, with_properties in ((2, False), (3, True)):
                if mode not in modes:
                    continue
                lines = work / f"lines-{mode}.jsonl"
                print(f"writing the collect API's lines ({'with' if with_properties else 'without'} properties) ...", file=sys.stderr)
                _generate_lines(lines, args.events, int(args.span * 1000), with_properties)
                runs.append((mode, "rta", lines))
        results: dict[tuple[int, str], list[dict]] = {}
        for attempt in range(args.repeat):
            for raw, peer, source in runs:
                n = args.textbook_events if peer == "textbook" else args.events
                data = work / f"{peer}-{raw}-{attempt}"
                cmd = [sys.executable, __file__, "--run", peer, "--raw", str(int(raw > 0)), "--file", str(source), "--data", str(data)]
                cmd += ["--events", str(n), "--metrics", str(definitions)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    print(out.stderr[-2000:], file=sys.stderr)
                    raise SystemExit(f"{peer} failed")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                results.setdefault((raw, peer), []).append(result)
                rate = result["events"] / result["seconds"]
                print(f"run {attempt + 1}/{args.repeat}: {LABELS[raw]}, {peer}: {rate:,.0f} events/s", file=sys.stderr)
                time.sleep(args.settle)
        _report(results, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _report(results: dict[tuple[int, str], list[dict]], repeat: int) -> None:
    """One row per mode and peer: the median run (by seconds) of ``repeat``; ratios against rta's."""
    median = {key: sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2] for key, rs in results.items()}
    if repeat > 1:
        print(f"medians of {repeat} interleaved runs per row")
    header = f"{'mode':<24}{'peer':<12}{'events':>12}{'seconds':>9}{'events/s':>13}{'cpu us/ev':>10}{'peak MB':>9}{'rta is':>10}"
    print(header + "  stored events" + ("  (all runs, events/s)" if repeat > 1 else ""))
    for (mode, peer), r in sorted(median.items(), key=lambda item: item[0][0]):  # modes in order, peers as given
        base = median.get((min(mode, 2), "rta"), r)  # props are compared to the same lines without
        rate = r["events"] / r["seconds"]
        ratio = (base["events"] / base["seconds"]) / rate
        cpu = r["cpu"] / r["events"] * 1e6
        extra = f"  (late, dropped: {r['late_dropped']:,})" if "late_dropped" in r else ""
        if repeat > 1:
            extra += "  (" + ", ".join(f"{x['events'] / x['seconds']:,.0f}" for x in results[(mode, peer)]) + ")"
        numbers = f"{r['events']:>12,}{r['seconds']:>9.2f}{rate:>13,.0f}{cpu:>10.1f}{r['peak_mb']:>9,.0f}{ratio:>9.1f}x"
        print(f"{LABELS[mode]:<24}{peer:<12}{numbers}  {r['stored']:,}{extra}")


if __name__ == "__main__":
    main()
