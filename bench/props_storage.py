"""What keeping undeclared properties costs ClickHouse at insert, by storage design, in one run.

    python bench/props_storage.py [--events 500000] [--rounds 3]

Inserts the same events (8 undeclared properties each: 6 texts, 2 numbers, one of them a
per-session id) from Arrow in 100K-row batches, as the flow inserts, into one embedded chdb table
per design, then merges it to one part (the merges the flow's parts get, counted too). Designs
run interleaved, ``--rounds`` times; the table shows the median wall time per event, what each
adds to a table without properties, and bytes per event on disk:

- none: the event's declared fields only (the floor);
- ``_p`` String only: the line's JSON text stored as it is (ZSTD), nothing parsed;
- map from ``_p``: ``props Map(LowCardinality(String), String) DEFAULT JSONExtract(_p, ...)``;
- maps ``_p``, ``_n``: both maps, texts and numbers (rta's raw table without materialized columns);
- maps + 10 columns: rta's raw table as the flow fills it (``prop.<key>``, ``num.<key>`` MATERIALIZED);
- one map + 10 columns: numbers read from the texts (``toFloat64OrNull``), no ``props_num``;
- ``_p`` + 10 columns, one tuple parse: no map, every column from one ``JSONExtract`` to a Tuple;
- ``_p`` + 10 columns from JSON: no map, one ``JSONExtract`` per column.

docs/architecture.md ("Schema-free properties") has what it measured and what was chosen.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa

BATCH = 100_000
TEXT = ("plan", "referrer", "experiment", "sku", "session_id", "locale")
NUMBERS = ("discount", "items")
KEYS = TEXT + NUMBERS
BASE = "timestamp DateTime64(3), event LowCardinality(String), user String, id String"
MAP = "Map(LowCardinality(String), String)"
NUM = "Map(LowCardinality(String), Float64)"
TUPLE = "Tuple(" + ", ".join(f"`{k}` Nullable(String)" for k in KEYS) + ")"
LOW = "LowCardinality(Nullable(String))"


def _columns(text: str, number: str) -> str:
    """Ten MATERIALIZED columns: ``text`` and ``number`` are expressions of ``{k}``."""
    texts = [f"`prop.{k}` {LOW} MATERIALIZED {text.format(k=k)}" for k in KEYS]
    numbers = [f"`num.{k}` Nullable(Float64) MATERIALIZED {number.format(k=k)}" for k in NUMBERS]
    return ", ".join(texts + numbers)


MAPS = (
    f"_p String EPHEMERAL, _n String EPHEMERAL, props {MAP} DEFAULT JSONExtract(_p, '{MAP}'), "
    f"props_num {NUM} DEFAULT JSONExtract(_n, '{NUM}')"
)
ONE_MAP = f"_p String EPHEMERAL, props {MAP} DEFAULT JSONExtract(_p, '{MAP}')"
STORED = "_p String CODEC(ZSTD(1))"
IN_MAP = "if(mapContains(props, '{k}'), props['{k}'], NULL)"
IN_NUM_MAP = "if(mapContains(props_num, '{k}'), props_num['{k}'], NULL)"
IN_TUPLE = f"tupleElement(JSONExtract(_p, '{TUPLE}'), '{{k}}')"
IN_JSON = "JSONExtract(_p, '{k}', 'Nullable(String)')"
DESIGNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "none": (BASE, ()),
    "_p String only": (f"{BASE}, {STORED}", ("_p",)),
    "map from _p": (f"{BASE}, {ONE_MAP}", ("_p",)),
    "maps _p, _n": (f"{BASE}, {MAPS}", ("_p", "_n")),
    "maps + 10 columns (rta today)": (f"{BASE}, {MAPS}, {_columns(IN_MAP, IN_NUM_MAP)}", ("_p", "_n")),
    "one map + 10 columns": (f"{BASE}, {ONE_MAP}, {_columns(IN_MAP, 'toFloat64OrNull(props[' + repr('{k}') + '])')}", ("_p",)),
    "_p + 10 columns, one tuple parse": (f"{BASE}, {STORED}, {_columns(IN_TUPLE, 'toFloat64OrNull(' + IN_TUPLE + ')')}", ("_p",)),
    "_p + 10 columns from JSON": (f"{BASE}, {STORED}, {_columns(IN_JSON, 'toFloat64OrNull(' + IN_JSON + ')')}", ("_p",)),
}


def batch(rng: random.Random) -> dict[str, pa.Array]:
    """One batch's columns: the declared fields, and the line's texts ``_p`` (every property) and ``_n`` (the numbers)."""
    plans, experiments = ("free", "starter", "pro", "business", "enterprise"), ("control", "v2", "(none)")
    locales = ("en-US", "de-DE", "fr-FR")
    texts, numbers = [], []
    for _ in range(BATCH):
        p = {
            "plan": rng.choice(plans),
            "referrer": f"site{rng.randrange(300)}.com",
            "experiment": rng.choice(experiments),
            "sku": f"sku-{rng.randrange(5000)}",
            "session_id": f"s{rng.randrange(10**9)}",
            "locale": rng.choice(locales),
            "discount": str(rng.randrange(50)),
            "items": str(rng.randrange(1, 9)),
        }
        texts.append(json.dumps(p, separators=(",", ":")))
        numbers.append(json.dumps({k: float(p[k]) for k in NUMBERS}, separators=(",", ":")))
    return {
        "timestamp": pa.array([1_700_000_000_000 + i for i in range(BATCH)], pa.int64()),
        "event": pa.array([rng.choice(("page_view", "purchase")) for _ in range(BATCH)]),
        "user": pa.array([f"u{rng.randrange(10**6)}" for _ in range(BATCH)]),
        "id": pa.array([f"m-{i}" for i in range(BATCH)]),
        "_p": pa.array(texts),
        "_n": pa.array(numbers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from rta.store.client import connect

    work = Path(tempfile.mkdtemp(prefix="rta-props-bench-"))
    try:
        client = connect(f"chdb://{work}")
        columns = batch(random.Random(1))
        times: dict[str, list[float]] = {name: [] for name in DESIGNS}
        sizes: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, (ddl, extra) in DESIGNS.items():
                client.command("DROP TABLE IF EXISTS t")
                client.command(f"CREATE TABLE t ({ddl}) ENGINE = MergeTree ORDER BY (event, timestamp)")
                keep = ("timestamp", "event", "user", "id", *extra)
                table = pa.table({k: v for k, v in columns.items() if k in keep})
                began = time.perf_counter()
                for _ in range(args.events // BATCH):
                    client.insert_arrow("t", table)
                client.command("OPTIMIZE TABLE t FINAL")
                times[name].append(time.perf_counter() - began)
                sizes[name] = client.query("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND table = 't'").result_rows[0][0]
        n = args.events // BATCH * BATCH
        floor = statistics.median(times["none"])
        print(f"{n:,} events x {len(KEYS)} properties, medians of {args.rounds} interleaved rounds (chdb, insert from Arrow + merge)\n")
        print(f"{'design':<36}{'us/event':>10}{'added':>10}{'B/event':>10}")
        for name, taken in times.items():
            median = statistics.median(taken)
            print(f"{name:<36}{median / n * 1e6:>10.2f}{(median - floor) / n * 1e6:>10.2f}{sizes[name] / n:>10.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
