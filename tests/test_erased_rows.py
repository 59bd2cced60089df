"""The sink's check before each insert of ids (rta/store/erased.py): which rows it drops, and how it and erasures exclude each other."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from rta.compiler.people_ddl import ALIASES_TABLE, TRAITS_TABLE
from rta.contract.people import id_hash
from rta.store.erased import _Gate, id_tables, kept_rows
from tests.test_people import PLAN, STREAM

pytestmark = pytest.mark.core
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TIME = pa.timestamp("ms", "UTC")


def test_rows_of_erased_ids_at_or_before_the_erasure_are_dropped_and_the_rest_kept_as_they_were():
    tables = {t.table: t for t in id_tables(PLAN)}
    assert set(tables) == {TRAITS_TABLE, ALIASES_TABLE, STREAM.raw_table} and tables[ALIASES_TABLE].ids == ("anonymous", "person")
    rows = pa.table(
        {
            "anonymous": pa.array(["a1", "a2", "a3", None], pa.large_string()),
            "person": pa.array(["u9", "u1", "u2", "u1"], pa.large_string()),
            "at": pa.array([AT, AT - timedelta(seconds=1), AT, AT + timedelta(milliseconds=1)], TIME),
        }
    )
    erased = {id_hash("u1"): AT, id_hash("a1"): AT}
    kept = kept_rows(rows, tables[ALIASES_TABLE], erased)
    assert kept.to_pylist() == [rows.slice(2, 2).to_pylist()[0], rows.slice(3, 1).to_pylist()[0]]  # a3/u2, and u1 after the erasure
    assert kept.schema == rows.schema
    assert kept_rows(rows, tables[ALIASES_TABLE], {}) is rows
    assert kept_rows(rows, tables[ALIASES_TABLE], {id_hash("u1"): AT - timedelta(days=1)}) is rows  # all after it: nothing hashed


def test_an_erasure_waits_for_inserts_under_way_and_holds_back_new_ones():
    gate, order = _Gate(), []
    inserting, erasing = threading.Event(), threading.Event()

    def insert(name: str, hold: float) -> None:
        with gate.inserting():
            order.append(f"{name} in")
            inserting.set()
            time.sleep(hold)
            order.append(f"{name} out")

    def erase() -> None:
        erasing.set()
        with gate.erasing():
            order.append("erase")
            time.sleep(0.05)

    first = threading.Thread(target=insert, args=("first", 0.2))
    first.start()
    inserting.wait()
    eraser = threading.Thread(target=erase)
    eraser.start()
    erasing.wait()
    time.sleep(0.05)  # the erasure waits for the first insert...
    second = threading.Thread(target=insert, args=("second", 0))
    second.start()  # ...and an insert arriving meanwhile waits for the erasure
    for thread in (first, eraser, second):
        thread.join(5)
    assert order == ["first in", "first out", "erase", "second in", "second out"]
