"""Events of generated people for the per-person tests (funnels, retention, paths), and their oracle rows.

Track messages through the collect API's contract (``validate`` makes the log lines the flow reads),
shuffled, in batches: anonymous visits later aliased to a user (identify with both ids, and alias
calls), ties on timestamps (whole seconds), repeated events, undeclared properties and traits.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from rta.contract.segment import Limits
from rta.flows.frames import BatchSource
from rta.flows.runner import run_flow
from rta.flows.sources import SourceBatch
from rta.ingest.segment import validate

NOW = datetime.now(UTC).replace(second=0, microsecond=0)  # near the real clock: the CLI asks for the last days from now
NAMES = ["page_view", "add_to_cart", "purchase", "click"]


def person_messages(
    rng: random.Random, prefix: str, people: int, events: int, spread: int, names: Sequence[str] = NAMES
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Track messages over ``spread`` seconds before NOW (whole seconds, so ties happen), half of each anonymous person's
    visits before they identify; identify (both ids, a trait) and alias calls. Returns the messages and the aliases."""
    messages: list[dict[str, Any]] = []
    aliases: dict[str, str] = {}
    for p in range(people):
        user, anon = f"{prefix}u{p}", f"{prefix}a{p}"
        merged = p % 3 != 0  # a third of the people never identify
        for n in range(rng.randint(1, events)):
            at = NOW - timedelta(seconds=rng.randint(1, spread))
            who = {"anonymousId": anon} if merged and n % 2 == 0 else {"userId": user if merged else anon}
            properties: dict[str, Any] = {"device": rng.choice(["mobile", "desktop"])}
            if rng.random() < 0.7:
                properties["plan"] = rng.choice(["free", "pro"])
            messages.append({"type": "track", "event": rng.choice(list(names)), **who, "messageId": f"{prefix}m{p}-{n}",
                             "timestamp": at.isoformat(), "properties": properties})  # fmt: skip
        if merged:
            at = (NOW - timedelta(seconds=rng.randint(1, spread))).isoformat()
            if p % 3 == 1:
                call = {"type": "identify", "userId": user, "anonymousId": anon, "traits": {"plan": rng.choice(["basic", "gold"])}}
            else:
                call = {"type": "alias", "userId": user, "previousId": anon}
            messages.append({**call, "messageId": f"{prefix}i{p}", "timestamp": at})
            aliases[anon] = user
    return messages, aliases


def oracle_rows(messages: list[dict[str, Any]]) -> tuple[pl.DataFrame, dict[str, str]]:
    """Every message as the event the stream keeps: identify and alias calls too (event 'identify', 'alias')."""
    traits = {m["userId"]: m["traits"]["plan"] for m in messages if m["type"] == "identify"}
    rows = []
    for m in messages:
        props = m.get("properties", {})
        user = m.get("userId") or m.get("anonymousId")
        rows.append({"timestamp": datetime.fromisoformat(m["timestamp"]), "event": m.get("event", m["type"]), "user_id": user,
                     "insert_id": m["messageId"], "device": props.get("device", ""), "prop.plan": props.get("plan")})  # fmt: skip
    frame = pl.DataFrame(rows, schema_overrides={"timestamp": pl.Datetime("ms", "UTC")})
    return frame, traits


def load(ws: Any, messages: list[dict[str, Any]], cuts: list[int], key: str) -> None:
    """Through the collect API's contract (its lines), in the batches ``cuts`` makes; events up to 30 days old accepted."""
    plan = ws.plan.stream("events")
    batches = []
    for n, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(messages)], strict=True)):
        if a == b:
            continue
        checked = validate(json.dumps(messages[a:b]).encode(), plan, now=NOW, limits=Limits(max_age=timedelta(days=29)))
        assert not checked.rejected, checked.rejected
        batches.append(SourceBatch(f"{key}:{n}", "events", b"\n".join(checked.lines)))
    run_flow(ws.plan, BatchSource(batches), ws.client, clock=lambda: NOW)


def with_traits(frame: pl.DataFrame, traits: dict[str, str], aliases: dict[str, str]) -> pl.DataFrame:
    person = pl.col("user_id").replace(aliases)
    return frame.with_columns(person.replace_strict(traits, default=None, return_dtype=pl.String).alias("person.plan"))
