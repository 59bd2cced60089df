"""Generated Segment messages in every JSON layout, and an oracle of what each one must count as.

Shared by the in-process property test (``test_acknowledged.py``) and the fuzz tier over HTTP.
The oracle reads a message the way the Segment spec means it (the last of duplicate keys wins,
as in Python's ``json``), so it is independent of both the API's msgspec types and the flow's
Polars reader.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

NOW = datetime.now(UTC).replace(microsecond=0)
DIMS = ("country", "device", "campaign", "path")
MEASURES = ("revenue", "load_ms")
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def _time_text(moment: datetime, form: int) -> str:
    """One of the spellings of a time the API accepts."""
    z = moment.astimezone(UTC)
    forms = [
        z.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",  # JavaScript's toISOString()
        z.isoformat(),  # Python's isoformat(): +00:00, microseconds when any
        z.strftime("%Y-%m-%dt%H:%M:%Sz"),  # lower-case separators
        z.strftime("%Y-%m-%d %H:%M:%S") + "Z",  # a space for T
        moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),  # another offset
        z.strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z",  # nanoseconds
        z.strftime("%Y-%m-%dT%H:%M:%S") + "-00:00",
    ]
    return forms[form % len(forms)]


values = st.one_of(
    st.text(max_size=8), st.integers(-(10**30), 10**30), st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False)
)
junk = st.recursive(
    values, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6
)


@st.composite
def messages(draw: st.DrawFn, index: int = 0) -> dict[str, Any]:
    """A valid message of any kind, with anything in the fields nobody reads."""
    kind = draw(st.sampled_from(["track", "track", "track", "page", "screen", "identify"]))
    message: dict[str, Any] = {"type": kind}
    if kind == "track":
        message["event"] = draw(st.sampled_from(["purchase", "page_view", "add_to_cart", "Ünïcödé ✓", 'a"quote\\']))
    who = draw(st.sampled_from(["userId", "anonymousId", "both"]))
    if who in ("userId", "both"):
        message["userId"] = draw(st.one_of(st.text(min_size=1, max_size=12), st.integers(0, 10**12)).filter(lambda u: u != ""))
    if who in ("anonymousId", "both"):
        message["anonymousId"] = draw(st.text(min_size=1, max_size=12))
    ident = draw(st.sampled_from(["given", "given", "null", "absent"]))
    if ident == "given":
        message["messageId"] = f"ack-{draw(st.uuids())}"
    elif ident == "null":
        message["messageId"] = None
    offset = timedelta(seconds=draw(st.integers(-3600 * 48, 1800)), microseconds=draw(st.integers(0, 999_999)))
    when = draw(st.sampled_from(["timestamp", "timestamp", "original", "none"]))
    if when == "timestamp":
        message["timestamp"] = _time_text(NOW + offset, draw(st.integers(0, 6)))
    elif when == "original":
        message["originalTimestamp"] = _time_text(NOW + offset, draw(st.integers(0, 6)))
        message["sentAt"] = _time_text(NOW + offset, 0)
    properties: dict[str, Any] = {}
    for dim in DIMS:
        if draw(st.booleans()):
            properties[dim] = draw(st.one_of(st.text(max_size=10), st.integers(-(10**15), 10**15)))
    for measure in MEASURES:
        if draw(st.booleans()):
            properties[measure] = draw(st.one_of(st.integers(-(10**15), 10**15), st.floats(-1e300, 1e300, allow_nan=False)))
    properties |= draw(st.dictionaries(st.sampled_from(["plan", "blob", "nested", "n"]), junk, max_size=2))
    if draw(st.booleans()):
        properties["huge"] = int("9" * draw(st.integers(20, 400)))  # a number no float holds, in a property nobody reads
    if properties or draw(st.booleans()):
        message["properties"] = properties
    if draw(st.booleans()):
        context: dict[str, Any] = {}
        if draw(st.booleans()):
            context["userAgent"] = UA
        if draw(st.booleans()):
            context["page"] = {"path": draw(st.sampled_from(["/", "/cart", "/p/ü"])), "referrer": "https://x.example/"}
        if draw(st.booleans()):
            context["campaign"] = {"name": draw(st.text(max_size=6)), "source": "news"}
        if draw(st.booleans()):
            context["library"] = {"name": "analytics.js", "version": "4.0"}
        if draw(st.booleans()):
            context["traits"] = draw(st.dictionaries(st.sampled_from(["plan", "email", "n"]), junk, max_size=2))
        message["context"] = context
    if draw(st.booleans()):
        message["traits"] = draw(st.dictionaries(st.text(max_size=4), junk, max_size=3))
    if kind == "identify" and draw(st.booleans()):
        message["type"], message["previousId"] = "alias", draw(st.text(min_size=1, max_size=12))
    if draw(st.booleans()):
        message["integrations"] = {"All": True, "n": int("7" * 30)}
    return message


def layout(message: Any, style: int, rnd: random.Random) -> str:
    """``message`` as JSON text in one of many layouts, all meaning the same message."""
    if style == 0:
        return json.dumps(message, separators=(",", ":"))
    if style == 1:
        return json.dumps(message, indent=2)
    if style == 2:
        return json.dumps(message, indent="\t").replace("\n", "\r\n")
    if style == 3:
        return json.dumps(message, ensure_ascii=True, separators=(" ,\t", " :\t"))
    if style == 4:
        return _shuffled(message, rnd)
    return _duplicated(message, rnd)


def _shuffled(value: Any, rnd: random.Random) -> str:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return "{" + ",\n ".join(f"{json.dumps(k)}: {_shuffled(v, rnd)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shuffled(v, rnd) for v in value) + "]"
    return json.dumps(value)


def _duplicated(value: Any, rnd: random.Random) -> str:
    """Every object gets an earlier copy of one of its keys holding a wrong value: the last one counts."""
    if isinstance(value, dict):
        parts = []
        if value:
            key = rnd.choice(list(value))
            parts.append(f"{json.dumps(key)}: {json.dumps(rnd.choice(['garbage', 10**30, None, {'x': 1}]))}")
        parts += [f"{json.dumps(k)}: {_duplicated(v, rnd)}" for k, v in value.items()]
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_duplicated(v, rnd) for v in value) + "]"
    return json.dumps(value)


def expected(message: dict[str, Any]) -> dict[str, Any]:
    """What an accepted message must be counted as: its user, event, measures, stated dimensions, time."""
    properties = message.get("properties") or {}
    kinds = {"page": "page_view", "screen": "screen_view", "identify": "identify", "alias": "alias"}
    user = message.get("userId") if message.get("userId") is not None else message.get("anonymousId")
    at = _parse(message["timestamp"]) if "timestamp" in message else None  # else the API's clock (skew corrected)
    out: dict[str, Any] = {
        "event": kinds.get(message["type"], message.get("event")),
        "user_id": str(user),
        **{m: float(properties[m]) for m in MEASURES if properties.get(m) is not None},
        **{d: str(properties[d]) for d in DIMS if properties.get(d) is not None},
    }
    traits = {**((message.get("context") or {}).get("traits") or {}), **(message.get("traits") or {})}
    out["_props"], out["_nums"] = _flattened(properties, DECLARED)
    out["_traits"] = _flattened(traits, frozenset())[0]
    if message.get("previousId") is not None:
        out["_prev"] = message["previousId"]
    if at is not None:
        out["timestamp_ms"] = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return out


def _parse(text: str) -> datetime:
    text = text.replace("t", "T").replace("z", "Z").replace(" ", "T")
    if text.endswith("789Z"):  # nanoseconds: round to microseconds, as the API does
        head = text[:-4]
        seconds, _, micros = head.partition(".")
        value = datetime.fromisoformat(seconds + "+00:00") + timedelta(microseconds=round(int(micros + "789") / 1000))
        return value
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Every property a stream declares (its dimensions, measures and their UTM spellings) is a column;
# the rest are kept flattened.
DECLARED = frozenset({*DIMS, *MEASURES, "utm_campaign"})


def _paths(value: Any, path: str, depth: int) -> Any:
    """(path, value) of every leaf, objects opened up to eight levels deep, in order."""
    if isinstance(value, dict) and depth <= 8:
        for key, inner in value.items():
            yield from _paths(inner, f"{path}.{key}" if depth > 1 else key, depth + 1)
    elif value is not None and value != {}:
        yield path, value


def _flattened(values: dict[str, Any], declared: frozenset[str]) -> tuple[dict[str, Any], dict[str, float]]:
    """What a property map must hold (values comparable: texts, numbers, JSON values), and its numbers."""
    texts: dict[str, Any] = {}
    numbers: dict[str, float] = {}
    for path, value in _paths({k: v for k, v in values.items() if k not in declared}, "", 1):
        texts[path] = value if not isinstance(value, bool) else ("true" if value else "false")
        numbers.pop(path, None)
        if isinstance(value, int | float) and not isinstance(value, bool) and _finite_float(value):
            numbers[path] = float(value)
    return texts, numbers


def _finite_float(value: int | float) -> bool:
    """Whether a JSON number is also a 64-bit float: 1.7e308 is, 1e400 and 10**309 are not."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def same_value(text: str, value: Any) -> bool:
    """Whether a stored text is the value sent: lists and objects as JSON, numbers by value."""
    if isinstance(value, list | dict):
        return bool(json.loads(text) == value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (int(text) if isinstance(value, int) else float(text)) == value
    return text == value
