"""The query cache's version: an answer computed before a rollup's rows landed is not served after they did.

The flow's writers take a flush's tally (which the store's version reads) and its rollups' rows from one
queue, so the tally can land first. The version also counts this process's finished inserts.
"""

from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest

from rta.flows.demo import Population, generate
from rta.flows.events import normalize
from rta.flows.partials import partials
from rta.flows.runner import run_flow
from rta.store.writer import Write, insert
from rta.testing import BatchSource, frame_batches
from tests.conftest import QUERY_NOW, clear_store, shop_project

pytestmark = pytest.mark.store


def test_a_rollup_insert_after_the_tally_is_seen_within_about_a_second(_session_client, store_dsn, tmp_path_factory):
    clear_store(_session_client)
    ws = shop_project(tmp_path_factory, store_dsn, "version")
    now_ms = int(QUERY_NOW.timestamp() * 1000)
    first, later = (generate(Population(3, users=500), 2_000, now_ms - 3_600_000, now_ms - 60_000, np.random.default_rng(s), f"v{s}")
                    for s in (1, 2))  # fmt: skip
    run_flow(ws.plan, BatchSource(frame_batches("events", [first])), ws.client, clock=lambda: QUERY_NOW)
    span = {"start": QUERY_NOW - timedelta(hours=2), "end": QUERY_NOW, "grain": "total", "now": QUERY_NOW}
    before = ws.query("page_views", **span)["page_views"][0]
    assert ws.answer("page_views", **span).cache_hit  # cached under the store's version
    # The rows of a flush landing after its tally: no tally moves, only an insert of this process.
    rollup = next(r for r in ws.plan.rollups if r.name == "traffic_overall")
    events = normalize(later, ws.plan.stream("events"), QUERY_NOW).events
    insert(ws.client, Write(rollup.input_table, partials(rollup, events).to_arrow(), "late-rows"))
    inside = (later["timestamp"] >= span["start"]) & (later["timestamp"] < span["end"])  # a few arrive hours late
    added = int(((later["event"] == "page_view") & inside).sum())
    deadline = time.monotonic() + 10
    while (got := ws.query("page_views", **span)["page_views"][0]) == before and time.monotonic() < deadline:
        time.sleep(0.2)  # the version is read again at most once a second, on a thread
    assert got == before + added and time.monotonic() < deadline
