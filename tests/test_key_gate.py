"""The one authorization step of the collect API, the query API and the dashboard pages."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from rta.contract.http import HttpError, KeyGate
from rta.contract.keys import KeyStore

pytestmark = pytest.mark.core


def _refusal(gate: KeyGate, headers: dict[str, str], given: str = "") -> tuple[int, str]:
    with pytest.raises(HttpError) as caught:
        gate.admit(headers, given)
    return caught.value.status, caught.value.reason


def test_a_key_comes_as_bearer_basic_or_in_the_query_string(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    key, secret = keys.create("write")
    gate = KeyGate(keys, ("write",), "write key", missing="send a write key")
    basic = base64.b64encode(f"{secret}:".encode()).decode()
    assert gate.admit({"authorization": f"Bearer {secret}"}) == key
    assert gate.admit({"authorization": f"Basic {basic}"}) == key
    assert gate.admit({}, secret) == key
    assert _refusal(gate, {}) == (401, "send a write key")
    assert _refusal(gate, {"authorization": "Basic %%%"}, secret) == (401, "malformed Basic credentials")
    assert _refusal(gate, {"authorization": "Bearer nope"}) == (401, "unknown or revoked write key")


def test_a_live_key_of_another_kind_is_forbidden_and_a_revoked_one_unknown(tmp_path: Path) -> None:
    keys = KeyStore(tmp_path)
    read, secret = keys.create("read")
    gate = KeyGate(keys, ("write",), "write key", missing="", forbidden="a {kind} key cannot ingest")
    assert _refusal(gate, {}, secret) == (403, "a read key cannot ingest")
    keys.revoke(read.id)
    assert _refusal(gate, {}, secret)[0] == 401


def test_a_cached_check_outlives_a_revocation_only_for_its_seconds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = KeyStore(tmp_path)
    key, secret = keys.create("write")
    gate = KeyGate(keys, ("write",), "write key", missing="", cache_seconds=5.0)
    clock = [100.0]
    monkeypatch.setattr("rta.contract.http.time.monotonic", lambda: clock[0])
    assert gate.admit({}, secret) == key
    keys.revoke(key.id)
    assert gate.admit({}, secret) == key  # within the cache's 5 s
    clock[0] += 6
    assert _refusal(gate, {}, secret)[0] == 401
