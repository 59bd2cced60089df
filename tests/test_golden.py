"""Golden files: the compiled DDL and flow of every example metrics file.

Set RTA_UPDATE_GOLDEN=1 to rewrite them, then review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from rta.compiler import compile
from rta.project import load_definitions
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.core
GOLDEN = Path(__file__).parent / "golden"


def assert_golden(path: Path, text: str) -> None:
    if os.environ.get("RTA_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} is missing; run with RTA_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{path} differs; run with RTA_UPDATE_GOLDEN=1 and review the diff"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_compiles_to_golden(example: Path) -> None:
    plan = compile(load_definitions((example,)))
    assert_golden(GOLDEN / example.stem / "ddl.sql", plan.ddl_sql())
    assert_golden(GOLDEN / example.stem / "flow.txt", plan.flow_text())
    if plan.definitions.alerts:
        assert_golden(GOLDEN / example.stem / "alerts.txt", plan.alerts_text())
    if plan.definitions.dashboards:
        assert_golden(GOLDEN / example.stem / "dashboards.txt", plan.dashboards_text())


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_compile_is_pure_and_stable(example: Path) -> None:
    first = compile(load_definitions((example,)))
    again = compile(load_definitions((example,)))
    assert first.ddl_sql() == again.ddl_sql() and first.flow == again.flow


def test_editing_a_metric_changes_its_tables() -> None:
    from rta import col, count, metric, rollup, stream
    from rta.dsl import definitions

    events = stream("events", dimensions={"event": str})
    before = compile(definitions([rollup("r", [metric("v", count(), stream=events)])]))
    after = compile(definitions([rollup("r", [metric("v", count(), where=col("event") == "x", stream=events)])]))
    assert before.rollups[0].input_table != after.rollups[0].input_table


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_the_printed_flow_is_the_flow_that_runs(example: Path) -> None:
    from rta.flows.dataflow import build_dataflow
    from rta.flows.sink import StoreSink
    from rta.flows.stats import FlowStats
    from rta.testing import BatchSource

    plan = compile(load_definitions((example,)))
    flow = build_dataflow(plan, BatchSource([]), StoreSink(lambda _: None, FlowStats()), FlowStats())  # type: ignore[arg-type,return-value]
    built = [s.step_id.removeprefix("rta.") for s in flow.substeps]
    printed = list(dict.fromkeys(s.step_id for s in plan.flow if s.step_id))  # one "parse" line per stream
    assert built == printed


def _built_steps(flow: Any) -> list[tuple[str, str, tuple[str, ...]]]:
    """Each top-level Bytewax step of ``flow``: its id, operator and the top-level steps it reads."""

    def top(stream_id: str) -> str:  # "rta.parse.flat_map_batch.down" -> "parse"
        return stream_id.split(".")[1]

    from bytewax.dataflow import MultiPort

    steps = []
    for s in flow.substeps:
        ports = [getattr(s, name) for name in s.ups_names]
        ups = [top(i) for p in ports for i in (p.stream_ids.values() if isinstance(p, MultiPort) else [p.stream_id])]
        steps.append((s.step_id.removeprefix("rta."), type(s).__name__, tuple(ups)))
    return steps


def _build(plan: Any, sources: int = 1) -> Any:
    from rta.flows.dataflow import build_dataflow
    from rta.flows.sink import StoreSink
    from rta.flows.stats import FlowStats
    from rta.testing import BatchSource

    batches = [BatchSource([]) for _ in range(sources)]
    return build_dataflow(plan, batches, StoreSink(lambda _: None, FlowStats()), FlowStats())  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_the_built_dataflow_is_the_plans_steps(example: Path) -> None:
    """Step ids, operators and edges of the Bytewax dataflow are the plan's flow steps, in order."""
    plan = compile(load_definitions((example,)))
    assert _built_steps(_build(plan)) == [(s.step_id, s.op, s.ups) for s in plan.flow]


def test_the_built_dataflow_is_the_plans_steps_without_rollups() -> None:
    from rta import stream
    from rta.dsl import definitions

    for defs in (definitions([]), definitions([stream("e", dimensions={"c": str}, keep_raw="7d")])):
        plan = compile(defs)
        assert _built_steps(_build(plan)) == [(s.step_id, s.op, s.ups) for s in plan.flow]


def test_several_sources_add_inputs_merged_before_parse() -> None:
    """The one step the plan cannot know: sources side by side (log, demo) add input_2... and merge them."""
    plan = compile(load_definitions((EXAMPLES[0],)))
    built = _built_steps(_build(plan, sources=3))
    assert built[:5] == [
        ("input", "input", ()),
        ("input_2", "input", ()),
        ("input_3", "input", ()),
        ("inputs", "merge", ("input", "input_2", "input_3")),
        ("parse", "map", ("inputs",)),
    ]
    assert [b[:2] for b in built[5:]] == [(s.step_id, s.op) for s in plan.flow[2:]]
