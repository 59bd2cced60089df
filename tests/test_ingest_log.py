"""The durable log: group commit, stored groups, torn tails, and the flow reading it exactly once."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rta.contract.log_format import GROUP_END, read_frames
from rta.flows.log_source import LogSource, committed_offset
from rta.flows.runner import run_flow
from rta.ingest.log import EventLog, LogFull

pytestmark = pytest.mark.core


def test_appends_are_durable_in_order_and_groups_are_stored(tmp_path):
    log = EventLog(tmp_path / "log", partitions=2, group_seconds=0.05)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(lambda i=i: (i % 2, log.submit(i % 2, f"event {i}\n".encode()).result())) for i in range(400)]
        offsets = [f.result() for f in futures]  # (partition, offset)
    time.sleep(0.2)  # idle groups close
    log.close()
    assert len(set(offsets)) == 400
    frames = read_frames(tmp_path / "log" / "p0", 0) + read_frames(tmp_path / "log" / "p1", 0)
    payloads = sorted(f.payload for f in frames if f.payload)
    assert payloads == sorted(f"event {i}\n".encode() for i in range(400))
    for part in ("p0", "p1"):
        part_frames = read_frames(tmp_path / "log" / part, 0)
        assert part_frames[-1].flags & GROUP_END  # every group is closed at the end
        assert [f.offset for f in part_frames[1:]] == [f.next_offset for f in part_frames[:-1]]


def test_a_torn_tail_is_cut_when_the_log_opens(tmp_path):
    log = EventLog(tmp_path / "log")
    log.submit(0, b"kept\n").result()
    log.close()
    segment = next((tmp_path / "log" / "p0").glob("*.seg"))
    with segment.open("ab") as handle:
        handle.write(b"\x40\x00\x00\x00garbage that a crash left half written")
    again = EventLog(tmp_path / "log")
    offset = again.submit(0, b"after\n").result()
    again.close()
    payloads = [f.payload for f in read_frames(tmp_path / "log" / "p0", 0) if f.payload]
    assert payloads == [b"kept\n", b"after\n"] and offset > 0


def test_a_full_log_refuses_instead_of_dropping(tmp_path):
    log = EventLog(tmp_path / "log", max_bytes=100)
    log.submit(0, b"x" * 60).result()
    with pytest.raises(LogFull, match="limit is 100"):
        log.submit(0, b"y" * 60)
    log.close()
    short = EventLog(tmp_path / "log2", min_free_bytes=10**18)
    with pytest.raises(LogFull, match="bytes free"):
        short.submit(0, b"z")
    short.close()


@pytest.mark.store
@pytest.mark.flow
def test_the_flow_reads_the_log_once_even_when_restarted(tmp_path, client, shop):
    from tests.conftest import QUERY_NOW

    log = EventLog(tmp_path / "log" / "events", partitions=2, group_seconds=0.05, segment_bytes=50_000)
    start = QUERY_NOW - timedelta(hours=1)
    lines = [
        {
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "event": "page_view",
            "country": "FR",
            "user_id": f"u{i % 7}",
            "insert_id": f"e{i}",
        }
        for i in range(3_000)
    ]
    for i in range(0, 3_000, 100):
        log.submit((i // 100) % 2, b"".join(json.dumps(line).encode() + b"\n" for line in lines[i : i + 100])).result()
    time.sleep(0.2)
    log.close()

    def run_until_read(recovery) -> None:
        stop = threading.Event()
        source = LogSource(tmp_path / "log" / "events", "events", 2, stop=stop, retention=0)
        timer = threading.Timer(4.0, stop.set)
        timer.start()
        run_flow(shop, source, client, clock=lambda: QUERY_NOW, recovery=recovery)
        timer.cancel()

    segments = len(list((tmp_path / "log" / "events" / "p0").glob("*.seg")))
    recovery = tmp_path / "recovery"
    run_until_read(recovery)
    assert len(list((tmp_path / "log" / "events" / "p0").glob("*.seg"))) < segments  # written past, so deleted
    run_until_read(recovery)  # resumes after what it read
    run_until_read(tmp_path / "fresh-recovery")  # a replay of what is left: the inserts deduplicate
    table = next(t.table for r in shop.rollups if r.name == "traffic_overall" for t in r.tables if t.grain == "1h")
    total = client.query(f"SELECT sum(page_views__n) FROM {table}").result_rows[0][0]
    assert total == 3_000
    assert committed_offset(tmp_path / "log" / "events" / "p0") > 0


def test_a_group_left_open_by_a_crash_is_closed_when_the_log_reopens(tmp_path):
    from rta.ingest.log import PartitionLog

    part = PartitionLog(tmp_path / "p0")
    part.append(b"acknowledged\n")
    part.sync()  # then the process dies: no GROUP_END was written
    PartitionLog(tmp_path / "p0").close()
    frames = read_frames(tmp_path / "p0", 0)
    assert [f.payload for f in frames] == [b"acknowledged\n", b""] and frames[-1].flags & GROUP_END


def test_insert_ids_are_remembered_across_a_restart_whatever_form_the_events_took(tmp_path):
    from rta.ingest.dedup import InsertIdFilter
    from rta.ingest.service import remember_recent
    from tests.conftest import shop_plan

    stream = shop_plan().stream("events")
    log = EventLog(tmp_path / "events")
    log.submit(0, b'{"type": "track", "messageId": "segment-1"}\n{"_t": "2026-11-28T12:00:00Z", "_id": "api-2", "type": "page"}\n').result()
    log.submit(0, b'{"event": "view", "insert_id": "flat-3"}\n').result()
    log.close()
    ids = InsertIdFilter()
    assert remember_recent(tmp_path / "events", stream, ids) == 3
    assert ids.claim(["segment-1", "api-2", "flat-3", "new-4"]).fresh == [False, False, False, True]


def test_ids_being_written_elsewhere_are_neither_new_nor_duplicates():
    from rta.ingest.dedup import InsertIdFilter

    ids = InsertIdFilter()
    first = ids.claim(["a", "b", "a"])
    assert first.fresh == [True, True, False]
    assert ids.claim(["b", "c"]) is None  # "b" is in flight: if that write fails, calling it a duplicate would lose it
    ids.release(first)
    second = ids.claim(["b", "c"])
    assert second.fresh == [True, True]
    ids.confirm(second)
    assert ids.claim(["b", "c", "d"]).fresh == [False, False, True]


def test_a_full_log_takes_events_again_once_the_flow_has_let_segments_go(tmp_path):
    from rta.contract.log_format import delete_before

    log = EventLog(tmp_path / "log", max_bytes=3_000, segment_bytes=1_000)
    for _ in range(2):
        log.submit(0, b"x" * 1_200).result()
    with pytest.raises(LogFull, match="limit is 3,000"):
        log.submit(0, b"y" * 1_200)
    assert delete_before(tmp_path / "log" / "p0", 2_000, older_than=0) == 1  # the flow wrote past the first segment
    time.sleep(1.1)  # the writer re-measures the log once a second
    assert log.submit(0, b"z" * 1_200).result() > 0
    log.close()


def test_insert_ids_are_remembered_for_the_window_and_forgotten_after_two():
    from rta.ingest.dedup import InsertIdFilter

    start = 1_800_000_000.0
    ids = InsertIdFilter(window_seconds=3600)
    ids.confirm(ids.claim(["a"], now=start))
    assert ids.claim(["a"], now=start + 3599).fresh == [False]  # remembered for at least the window
    assert ids.claim(["a"], now=start + 2 * 3600 + 120).fresh == [True]


def test_insert_id_memory_stays_bounded_and_keeps_the_newest_ids():
    from rta.ingest.dedup import InsertIdFilter

    ids = InsertIdFilter(max_ids=200_000)
    batches = [[f"id-{b}-{i}" for i in range(500)] for b in range(1_000)]  # 500,000 ids within a minute
    for batch in batches:
        claim = ids.claim(batch, now=1_800_000_000.0)
        assert claim.fresh == [True] * 500
        ids.confirm(claim)
    assert len(ids) <= 200_000
    assert ids.claim(batches[-1], now=1_800_000_000.0).fresh == [False] * 500
    # A log holding more than a generation's worth at start: the newest ids are kept.
    again, now = InsertIdFilter(max_ids=200_000), time.time()
    again.remember({int(now) // 60 - 10: [i for batch in batches for i in batch]}, now=now)
    assert len(again) <= 200_000
    assert again.claim(batches[-1], now=now).fresh == [False] * 500


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(0, 40).map(lambda k: k * 8), max_size=60), max_size=12))
def test_the_hash_tables_hold_exactly_what_was_added(batches):
    import numpy as np

    from rta.ingest.dedup import find, insert

    table, model = np.zeros((8, 8), dtype=np.int64), set()
    for batch in batches:
        keys = np.unique(np.array([min(k & (2**63 - 1), 2**63 - 2) or 1 for k in batch], dtype=np.int64))
        assert (find(table, keys) >= 0).tolist() == [k in model for k in keys.tolist()]
        new = keys[find(table, keys) < 0]
        while 2 * (len(model) + len(new)) > table.size:
            bigger = np.zeros((2 * len(table), 8), dtype=np.int64)
            insert(bigger, table[table != 0])
            table = bigger
        insert(table, new)
        model |= set(new.tolist())
        assert (table != 0).sum() == len(model)
        assert (find(table, keys) >= 0).all()
        assert table.reshape(-1)[find(table, keys)].tolist() == keys.tolist()


def test_the_log_judges_insert_ids_at_commit_and_refuses_only_requests_another_process_is_writing(tmp_path):
    from rta.ingest.dedup import InFlight, InsertIdFilter, SharedTables

    here, elsewhere = (InsertIdFilter(tables=SharedTables(tmp_path / "ids")) for _ in range(2))
    log = EventLog(tmp_path / "log", dedup=here)
    assert log.submit_events(0, [b'{"n":1}', b'{"n":2}', b'{"n":1}'], ["a", "b", "a"]).result() == [True, True, False]
    assert log.submit_events(0, [b'{"n":2}', b'{"n":3}'], ["b", "c"]).result() == [False, True]
    writing = elsewhere.claim(["d"])  # another process is writing "d" right now
    with pytest.raises(InFlight):
        log.submit_events(0, [b'{"n":4}'], ["d"]).result()
    elsewhere.release(writing)  # its write failed: "d" may come again
    assert log.submit_events(0, [b'{"n":4}'], ["d"]).result() == [True]
    log.close()
    payloads = b"".join(f.payload for f in read_frames(tmp_path / "log" / "p0", 0))
    assert payloads == b'{"n":1}\n{"n":2}\n{"n":3}\n{"n":4}\n'  # repeats never reach the log


def test_a_sync_writes_more_frames_than_one_writev_takes(tmp_path):
    from rta.ingest.log import IOV_MAX, PartitionLog

    part = PartitionLog(tmp_path / "p0")
    for i in range(IOV_MAX):  # two buffers a frame: twice what one writev call takes
        part.append(f"{i}\n".encode())
    part.sync()
    part.close()
    frames = read_frames(tmp_path / "p0", 0, max_bytes=10**9)
    assert [f.payload for f in frames] == [f"{i}\n".encode() for i in range(IOV_MAX)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 2**63 - 2) | st.integers(0, 40).map(lambda k: k * 64 + 1), max_size=200), st.data())
def test_a_doubled_table_holds_the_same_ids_pending_or_not_and_drops_tombstones(keys, data):
    import numpy as np

    from rta.ingest.dedup import PENDING, TOMBSTONE, doubled, find, insert

    keys = np.unique(np.array(keys, dtype=np.int64))
    pending = np.array(data.draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys))), dtype=bool)
    table = np.zeros((64, 8), dtype=np.int64)  # keys k * 64 + 1 all want row 1: it overflows into the next ones
    where = insert(table, np.where(pending, keys | PENDING, keys))
    table.reshape(-1)[where[: len(keys) // 4]] = TOMBSTONE  # released
    bigger = np.zeros((128, 8), dtype=np.int64)
    assert doubled(table, bigger, step=data.draw(st.sampled_from([1, 3, 64]))) == len(keys) - len(keys) // 4
    kept, gone = keys[len(keys) // 4 :], keys[: len(keys) // 4]
    assert (find(bigger, kept) >= 0).all() and (find(bigger, gone) < 0).all()
    held = bigger.reshape(-1)[find(bigger, kept)]
    assert ((held < 0) == pending[len(keys) // 4 :]).all()  # pending ids stay pending


def test_a_batch_bigger_than_the_memory_bound_is_still_judged():
    from rta.ingest.dedup import InsertIdFilter

    ids = InsertIdFilter(max_ids=1_000)  # tables of 4,096 slots, half of them usable
    batch = [f"big-{i}" for i in range(5_000)]
    ids.confirm(ids.claim(batch))
    assert ids.claim(batch[-10:] + ["new"]).fresh == [False] * 10 + [True]


def test_a_commit_that_fails_while_judging_ids_leaves_none_of_them_in_flight(tmp_path):
    from concurrent.futures import Future

    from rta.ingest.dedup import InsertIdFilter
    from rta.ingest.log import _Append

    class Failing(InsertIdFilter):
        def claim(self, insert_ids, now=None):
            if len(insert_ids) > 1:  # the whole group: as if another process held one, so requests go one by one
                return None
            if list(insert_ids) == ["b"]:
                raise LogFull("no room for the insert-id memory")
            return super().claim(insert_ids, now)

    ids = Failing()
    log = EventLog(tmp_path / "log", dedup=ids)
    group = [_Append(0, b"", Future(), [b'{"n":1}'], ["a"]), _Append(0, b"", Future(), [b'{"n":2}'], ["b"])]
    with pytest.raises(LogFull):
        log._commit(group)  # what the writer thread does with a group; it hands the error to the requests
    log.close()
    assert InsertIdFilter.claim(ids, ["a"]).fresh == [True]  # "a" was claimed, then released: not stuck in flight
    assert read_frames(tmp_path / "log" / "p0", 0) == []  # and nothing was written


def test_ids_submitted_from_an_event_loop_are_judged_on_its_thread(tmp_path):
    import asyncio

    from rta.ingest.dedup import InsertIdFilter

    class Watched(InsertIdFilter):
        threads: set[int] = set()

        def claim(self, insert_ids, now=None):
            self.threads.add(threading.get_ident())
            return super().claim(insert_ids, now)

        def confirm(self, claim):
            self.threads.add(threading.get_ident())
            super().confirm(claim)

    ids = Watched()
    log = EventLog(tmp_path / "log", dedup=ids)

    async def submit() -> tuple[list[bool], list[bool]]:
        first = await asyncio.wrap_future(log.submit_events(0, [b'{"n":1}', b'{"n":1}'], ["a", "a"]))
        again = await asyncio.wrap_future(log.submit_events(0, [b'{"n":1}'], ["a"]))
        return first, again

    assert asyncio.run(submit()) == ([True, False], [False])
    log.close()
    assert ids.threads == {threading.get_ident()}  # the loop's (this) thread, never the writer's


def test_a_step_handed_to_a_blocked_loop_runs_once_on_the_waiting_thread():
    import asyncio

    from rta.ingest.handoff import run_on

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    try:
        assert run_on(loop, threading.get_ident) == runner.ident  # a running loop takes the step
        with pytest.raises(ZeroDivisionError):
            run_on(loop, lambda: 1 / 0)  # its errors come back
        release = threading.Event()
        loop.call_soon_threadsafe(release.wait)  # the loop thread is stuck, e.g. waiting on the caller
        calls: list[int] = []
        assert run_on(loop, lambda: calls.append(threading.get_ident()) or "done", patience=0.05) == "done"
        release.set()
        time.sleep(0.1)  # the loop gets to the step it was handed: it must not run it again
        assert calls == [threading.get_ident()]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        loop.close()
    assert run_on(loop, lambda: "inline") == "inline"  # a closed loop: here


def test_a_damaged_length_does_not_hide_the_frames_after_it(tmp_path):
    """A header whose length was overwritten: reading resumes at the next sound frame, in the
    newest segment too, and reopening the partition keeps every frame after the damage."""
    from rta.contract.log_format import HEADER
    from rta.ingest.log import PartitionLog

    log = PartitionLog(tmp_path / "p0")
    offsets = [log.append(b'{"n":%d}\n' % i, GROUP_END) for i in range(6)]
    log.sync()
    log.close()
    segment = next((tmp_path / "p0").glob("*.seg"))
    data = bytearray(segment.read_bytes())
    data[offsets[2] : offsets[2] + 4] = (0xFFFFFFF0).to_bytes(4, "little")  # frame 2's length: garbage
    data[offsets[3] + HEADER.size + 2] ^= 0xFF  # and frame 3's payload
    segment.write_bytes(bytes(data))

    PartitionLog(tmp_path / "p0").close()  # the writer reopens it: nothing after the damage is cut
    assert not (tmp_path / "p0" / "torn").exists()
    frames = read_frames(tmp_path / "p0", 0)
    sound = [f.payload for f in frames if f.intact]
    assert sound == [b'{"n":0}\n', b'{"n":1}\n', b'{"n":4}\n', b'{"n":5}\n']
    damaged = [f for f in frames if not f.intact]
    assert [f.offset for f in damaged] == [offsets[2]] and damaged[0].next_offset == offsets[4]
