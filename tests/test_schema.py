"""Applying a plan to a store that an older rta created."""

from __future__ import annotations

import pytest

from rta.compiler.ddl import STATS_TABLE
from rta.store.schema import apply
from tests.conftest import shop_plan

pytestmark = pytest.mark.store


def test_columns_added_by_newer_releases_are_added_to_old_tables(client):
    client.command(
        f"CREATE TABLE {STATS_TABLE} (minute DateTime('UTC'), stream String, outcome String, events UInt64) "
        "ENGINE = MergeTree ORDER BY (stream, outcome, minute)"
    )
    client.command(f"INSERT INTO {STATS_TABLE} VALUES (now(), 'events', 'accepted', 3)")
    apply(shop_plan(), client)
    apply(shop_plan(), client)  # and again: nothing left to add
    columns = {name for (name,) in client.query(f"SELECT name FROM system.columns WHERE table = '{STATS_TABLE}'").result_rows}
    assert {"last_seen", "newest_event"} <= columns
    assert client.query(f"SELECT sum(events) FROM {STATS_TABLE}").result_rows == [(3,)]
