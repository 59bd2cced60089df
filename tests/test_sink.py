"""The store sink: writers insert side by side, each on its own session, and nothing queued is lost."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

from rta.errors import BackendError
from rta.flows import sink as sink_module
from rta.flows.sink import StoreSink
from rta.flows.stats import FlowStats
from rta.store.client import sibling
from rta.store.writer import Write

pytestmark = pytest.mark.store


def _writes(n: int) -> list[Write]:
    return [Write("t", pa.table({"a": pa.array([i, i + 100], pa.uint64())}), f"tok{i}", events=2) for i in range(n)]


class FakeClient:
    def close(self) -> None:
        pass


def _partition(connect, *, durable: bool = False, writers: int = 2):  # type: ignore[no-untyped-def]
    return StoreSink(connect, FlowStats(), writers=writers, durable=durable).build_part("store", "store", None)


def test_each_writer_has_its_own_session_and_every_write_lands_once(client: Client):
    client.command("CREATE TABLE t (a UInt64) ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100")
    made: list[Client] = []

    def connect(writer: int) -> Client:
        other = sibling(client) if writer else client
        assert other is not None
        made.append(other)
        return other

    part = _partition(connect)
    part.write_batch(_writes(8))
    part.write_batch(_writes(8))  # the same tokens again: nothing more
    part.close()
    assert made[0] is client and made[1] is not client
    assert client.query("SELECT count(), sum(a) FROM t").result_rows == [(16, sum(range(8)) * 2 + 800)]
    with pytest.raises(ProgrammingError, match="closed"):  # the writer's own session went with the sink
        made[1].command("SELECT 1")
    assert client.command("SELECT 1") == 1  # the flow's client stays open


def test_inserts_run_side_by_side(monkeypatch: pytest.MonkeyPatch):
    together = threading.Barrier(2, timeout=10)  # broken (an error) unless two inserts wait at once
    monkeypatch.setattr(sink_module, "insert", lambda client, write: together.wait())
    part = _partition(lambda writer: FakeClient())  # type: ignore[arg-type,return-value]
    part.write_batch(_writes(2))
    part.close()  # raises if an insert failed


def test_a_snapshot_waits_for_queued_writes_only_when_snapshots_are_kept(monkeypatch: pytest.MonkeyPatch):
    release = threading.Event()
    monkeypatch.setattr(sink_module, "insert", lambda client, write: release.wait(10))
    for durable in (False, True):
        release.clear()
        part = _partition(lambda writer: FakeClient(), durable=durable, writers=1)  # type: ignore[arg-type,return-value]
        part.write_batch(_writes(1))
        snapshot = threading.Thread(target=part.snapshot)
        snapshot.start()
        snapshot.join(0.5)
        assert snapshot.is_alive() is durable
        release.set()
        snapshot.join(10)
        part.close()


def test_a_failed_insert_fails_the_flow_and_later_writes_are_not_attempted(monkeypatch: pytest.MonkeyPatch):
    tried: list[str] = []

    def insert(client: object, write: Write) -> None:
        tried.append(write.token)
        raise RuntimeError("disk full")

    monkeypatch.setattr(sink_module, "insert", insert)
    part = _partition(lambda writer: FakeClient(), writers=1)  # type: ignore[arg-type,return-value]
    part.write_batch(_writes(3))
    with pytest.raises(BackendError, match="writing to the store failed: disk full"):
        part.close()
    assert tried == ["tok0"]


def test_a_client_made_elsewhere_has_no_sibling():
    class Elsewhere:
        pass

    assert sibling(Elsewhere()) is None  # type: ignore[arg-type]
