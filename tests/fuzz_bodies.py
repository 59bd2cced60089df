"""Hostile requests for the collect API, built from one seeded generator, and what is known about each.

A :class:`Shot` is one HTTP request; a :class:`Raw` is bytes written on a socket below the
HTTP client. When a request's messages are known exactly (``ids`` is set: the messages in the
order the API reads them, each one's ``fz-`` messageId or None when the API derives one or
refuses it), the test can tell which events an answer acknowledged from its ``rejected``
indices. A ``clean`` request holds only valid messages in a well-formed request, so it must be
acknowledged in full. Mutated, re-nested and random bodies (``ids`` None) count only through
the ``accepted`` of their answers.

Bodies are written by :func:`dump`, not :mod:`json`, so they can hold what Python's encoder
will not write: numbers such as ``1e400`` or a 5,000-digit integer (:class:`RawJson` tokens),
duplicate keys, ``\\u`` escapes in keys, any whitespace.
"""

from __future__ import annotations

import base64
import gzip
import random
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from json.encoder import encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

TRACKED = "fz-"  # messageIds of messages whose fate the test follows
MUTANT = "mu-"  # messageIds in bodies that are mutated afterwards (their fate is unknown)
CAMPAIGN = "fuzz"  # properties.campaign of every message of a tracked request
MUTANT_CAMPAIGN = "mutant"
BATCH_PATHS = ["/v1/batch", "/v1/import"]
SINGLE_PATHS = ["/v1/track", "/v1/page", "/v1/identify"]
UNKNOWN_PATHS = ["/v1/batch/", "/v1/Batch", "/v1/tracks", "/v2/batch", "/v1/", "/v1", "//v1/batch", "/v1/batch%00", "/v1/screens"]
UNKNOWN_PATHS += ["/v1/%62atch", "/", "/v1/batch.json", "/v1/query/../batch"]
KINDS = ["track"] * 5 + ["page", "screen", "identify"]
EVENTS = ["purchase", "signup", "add_to_cart", "Ünïcödé ✓", 'a"quote\\', "emoji 🙂", "tab\tand\nnewline", "\u202eRTL", "x" * 200]
UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
HOSTILE_TIMES = [
    "2026-11-28T12:00:00", "2026-11-28", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-28T24:00:00Z",
    "2026-11-28T23:59:60Z", "yesterday", "", " ", "0", "1764331200", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-14:00", "+275760-09-13T00:00:00Z", "2026-W48-5", "2026-11-28T12:00:00+99:00", "2026-11-28T12:00:00 UTC",
    "2026-11-28T12:00:00.Z", "2026-11-28T12:00:00,5Z", "\x00", "٢٠٢٦-١١-٢٨T12:00:00Z",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class RawJson:
    """A JSON token written as is (``1e400``, ``NaN``, a 5,000-digit integer)."""

    text: str


@dataclass(frozen=True, slots=True)
class Shot:
    """One HTTP request, and what is known about its messages."""

    kind: str
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes
    ids: tuple[str | None, ...] | None = None
    clean: bool = False
    again: bool = False  # the same bytes as an earlier clean request: nothing new to acknowledge


@dataclass(frozen=True, slots=True)
class Raw:
    """Pieces written on a socket, with ``pause`` seconds between them; ``close_write`` half-closes it after."""

    kind: str
    pieces: tuple[bytes, ...]
    pause: float = 0.0
    close_write: bool = False
    silent_ok: bool = False  # the request never ends: no answer is the right answer
    ids: tuple[tuple[str | None, ...], ...] = ()  # the tracked ids of each request on the socket, in order
    clean: bool = False


def dump(value: Any, rng: random.Random | None = None, style: str = "compact") -> str:
    """``value`` as JSON text in a layout: compact, indent, crlf, escapes, duplicates, shuffled or spaced."""
    return _Writer(rng or random.Random(0), style).write(value, 0)


@dataclass
class _Writer:
    rng: random.Random
    style: str

    def write(self, value: Any, depth: int) -> str:
        if isinstance(value, RawJson):
            return value.text
        if isinstance(value, dict):
            return self._object(value, depth)
        if isinstance(value, list | tuple):
            parts = [self.write(v, depth + 1) for v in value]
            return self._wrap("[", parts, "]", depth)
        if isinstance(value, str):
            return self._string(value)
        if value is True or value is False or value is None:
            return {True: "true", False: "false", None: "null"}[value]
        return repr(value) if isinstance(value, float) else str(value)

    def _object(self, value: dict[str, Any], depth: int) -> str:
        items = list(value.items())
        if self.style == "shuffled":
            self.rng.shuffle(items)
        colon = {"spaced": " \t: \r\n", "escapes": ":", "compact": ":"}.get(self.style, ": ")
        parts = [f"{self._string(k)}{colon}{self.write(v, depth + 1)}" for k, v in items]
        if self.style == "duplicates" and items:  # an earlier copy of one key with a wrong value: the last one counts
            key = self.rng.choice(items)[0]
            wrong = self.rng.choice(['"garbage"', "1" + "0" * 30, "null", '{"x": 1}', "[]", "true"])
            parts.insert(0, f"{self._string(key)}: {wrong}")
        return self._wrap("{", parts, "}", depth)

    def _wrap(self, left: str, parts: list[str], right: str, depth: int) -> str:
        if not parts:
            return left + right
        if self.style == "indent":
            pad = "\n" + "  " * (depth + 1)
            return left + pad + ("," + pad).join(parts) + "\n" + "  " * depth + right
        if self.style == "crlf":
            pad = "\r\n" + "\t" * (depth + 1)
            return left + pad + ("," + pad).join(parts) + "\r\n" + "\t" * depth + right
        if self.style == "spaced":
            return left + " \t" + " ,\r\n\t ".join(parts) + " \n" + right
        return left + ",".join(parts) + right

    def _string(self, text: str) -> str:
        if self.style != "escapes":
            return encode_basestring(text)
        if len(text) > 200:
            return encode_basestring_ascii(text)
        out = ['"']
        for char in text:
            code = ord(char)
            if char in '"\\':
                out.append("\\" + char)
            elif code < 0x20:
                out.append(f"\\u{code:04x}")
            elif self.style == "escapes" and (code > 0x7E or self.rng.random() < 0.5):
                if code > 0xFFFF:  # a surrogate pair
                    code -= 0x10000
                    out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}")
                else:
                    out.append(f"\\u{code:04X}" if self.rng.random() < 0.5 else f"\\u{code:04x}")
            else:
                out.append(char)
        return "".join(out) + '"'


LAYOUTS = ["compact", "indent", "crlf", "escapes", "duplicates", "shuffled", "spaced"]


@dataclass
class Fuzz:
    """Builds the requests of one run from ``random.Random(seed)``."""

    seed: int
    key: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    rng: random.Random = field(init=False)
    counter: int = 0
    serial: int = 0  # of requests, for Idempotency-Keys
    sent_clean: list[Shot] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def pick(self, options: list[Any]) -> Any:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def at(self, size: int) -> int:
        """A position below ``size`` from one draw, whatever ``size`` is.

        Sizes of bodies vary with the clock (gzip of other times, other lengths); ``randrange``
        would then draw a different number of times, and every request after would differ.
        """
        return int(self.rng.random() * size)

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def text(self, longest: int = 10) -> str:
        alphabet = "abcXYZ019 -_.,:;'\"\\/é日🙂\u0301\u00a0\t\u2028\x85"  # U+2028 and NEL: JSON.stringify leaves them as they are
        return "".join(self.rng.choices(alphabet, k=self.rng.randint(1, longest)))

    # --- times ---------------------------------------------------------------------------

    def time_text(self, moment: datetime) -> str:
        """One of the spellings of a zoned time the API accepts."""
        z = moment.astimezone(UTC)
        forms = [
            z.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",  # JavaScript's toISOString()
            z.isoformat(),  # +00:00, microseconds when any
            z.strftime("%Y-%m-%dt%H:%M:%Sz"),  # lower-case t and z
            z.strftime("%Y-%m-%d %H:%M:%S") + "Z",
            moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
            moment.astimezone(timezone(timedelta(hours=-9, minutes=-30))).isoformat(),
            z.strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z",  # nanoseconds
            z.strftime("%Y-%m-%dT%H:%M:%S") + "-00:00",
            z.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-5] + "z",  # tenths, lower-case zone
        ]
        return self.pick(forms)

    def moment(self) -> datetime:
        """A time the stream still counts: up to two days back, half an hour ahead."""
        return self.now + timedelta(seconds=self.rng.randint(-48 * 3600, 1800), microseconds=self.rng.randint(0, 999_999))

    # --- messages ------------------------------------------------------------------------

    def message(self, ident: str | None, campaign: str, *, absent: bool = False) -> dict[str, Any]:
        """A valid message; ``ident`` None gives a null messageId (``absent``: no key at all)."""
        kind = self.pick(KINDS)
        message: dict[str, Any] = {"type": kind}
        if kind == "track":
            message["event"] = self.pick(EVENTS)
        elif self.chance(0.3):
            message["name"] = self.pick(["Docs", "Home", "", self.text()])
        who = self.rng.random()
        if who < 0.7:
            message["userId"] = self.pick([f"u{self.rng.randint(0, 99)}", self.rng.randint(0, 10**12), self.text(), "ü" * 200])
        if who >= 0.5:
            message["anonymousId"] = self.pick([f"anon-{self.rng.randint(0, 9)}", self.text()])
        if not absent:
            message["messageId"] = ident
        when = self.rng.random()
        if when < 0.6:
            message["timestamp"] = self.time_text(self.moment())
        elif when < 0.85:
            at = self.moment()
            message["originalTimestamp"] = self.time_text(at)
            message["sentAt"] = self.time_text(at + timedelta(seconds=self.rng.randint(0, 600)))
        properties: dict[str, Any] = {"campaign": campaign}
        if self.chance(0.6):
            properties["country"] = self.pick(["FR", "US", "日本", "", self.text(), self.rng.randint(-(10**15), 10**15), "c" * 1_024])
        if self.chance(0.4):
            properties["device"] = self.pick(["mobile", "desktop", self.text(), None])
        if self.chance(0.6):
            properties["revenue"] = self.pick(
                [2.5, 0, -3, 10**15, 1e300, -1e-300, 5e-324, self.rng.uniform(-1e6, 1e6), RawJson("1E3"), RawJson("-0.0"), None]
            )
        if self.chance(0.4):  # undeclared: read by nobody, whatever it holds
            properties[self.pick(["plan", "huge", "blob", "nested", "n"])] = self.pick(
                [RawJson("9" * 400), RawJson("-" + "1" * 300 + ".5e-3"), "x" * 3_000, {"a": [1, {"b": None}]}, [[[[[]]]]], True]
            )
        if self.chance(0.2):
            properties["utm_campaign"] = "other"  # properties.campaign wins
        message["properties"] = properties
        if self.chance(0.5):
            context: dict[str, Any] = {}
            if self.chance(0.5):
                context["userAgent"] = self.pick([UA, "curl/8.0", "", "ü" * 300])
            if self.chance(0.4):
                context["page"] = {"path": self.pick(["/", "/cart", "/p/ü"]), "referrer": "https://x.example/", "title": self.text()}
            if self.chance(0.3):
                context["campaign"] = {"name": "from-context", "source": "news"}
            if self.chance(0.3):
                context["ip"] = self.pick(["81.2.69.160", "::1", "2001:db8::1", "not an ip", ""])
            if self.chance(0.3):
                context["library"] = {"name": "analytics.js", "version": "4.0"}
            if self.chance(0.2):
                context["locale"] = "fr-FR"
            message["context"] = context
        if kind == "identify" or self.chance(0.15):
            message["traits"] = self.pick(
                [
                    {"email": "a@b.c", "n": RawJson("7" * 400)},
                    {"deep": self.nested(self.rng.randint(1, 60))},
                    {"big": RawJson("-" + "3" * 400)},
                ]
            )
        if self.chance(0.1):
            message["integrations"] = {"All": True, "n": RawJson("1" * 40)}
        return message

    def nested(self, depth: int) -> RawJson:
        """Objects and arrays ``depth`` deep (as text: a recursive writer would not get that deep)."""
        opens, closes = [], []
        for _ in range(depth):
            if self.chance(0.5):
                opens.append('{"k":')
                closes.append("}")
            else:
                opens.append("[")
                closes.append("]")
        return RawJson("".join(opens) + self.pick(["1", '"x"', "null", "[]", "{}"]) + "".join(reversed(closes)))

    def twisted(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message with one hostile field (it may still be acceptable: the answer decides)."""
        bad = dict(message)
        campaign = message["properties"]["campaign"]
        properties = dict(message["properties"])
        roll = self.rng.randint(0, 17)
        if roll == 0:
            bad["messageId"] = self.pick([42, "", "x" * 300, [], {}, True, 1.5])
        elif roll == 1:
            bad[self.pick(["timestamp", "originalTimestamp", "sentAt"])] = self.pick([*HOSTILE_TIMES, 12345, None, ["2026"], {"t": 1}])
        elif roll == 2:
            properties["revenue"] = self.pick(
                [RawJson("9" * 400), RawJson("1e400"), RawJson("-1e400"), RawJson("9" * 5_000), "12", True, [], {}, "NaN"]
            )
        elif roll == 3:
            properties[self.pick(["plan", "huge"])] = self.pick([RawJson("1e400"), RawJson("9" * 5_000), RawJson("-2E+999")])
        elif roll == 4:
            bad["traits"] = self.pick(
                [{"n": RawJson("1e400")}, {"n": RawJson("8" * 5_000)}, {"deep": self.nested(self.pick([200, 1_200, 5_000]))}]
            )
        elif roll == 5:
            properties[self.pick(["country", "device"])] = self.pick(
                ["x" * 1_025, "x" * 100_000, RawJson("9" * 400), RawJson("9" * 5_000), {}, [], 1.5, True, RawJson("1e400")]
            )
        elif roll == 6:
            bad[self.pick(["shoeSize", "__proto__", "Type", "user_id", "batch", "$set"])] = 1
        elif roll == 7:
            bad["type"] = self.pick(["bogus", "TRACK", "", None, 42, ["track"], "alias ", "group"])
        elif roll == 8:
            bad["userId"] = self.pick(["", {}, [], True, 1.5, "u" * 201, RawJson("9" * 400), RawJson("-" + "9" * 250)])
            bad.pop("anonymousId", None)
        elif roll == 9:
            bad.pop("userId", None)
            bad.pop("anonymousId", None)
        elif roll == 10:
            bad["event"] = self.pick([None, "", "   ", 42, "e" * 201, ["a"], {}])
            bad["type"] = "track"
        elif roll == 11:
            bad[self.pick(["properties", "context"])] = self.pick(["x", [], 42, True])
        elif roll == 12:
            bad["context"] = self.pick(
                [{"page": {"path": 42}}, {"ip": "9" * 100}, {"userAgent": "y" * 70_000}, {"campaign": "flat"}, {"location": []}]
            )
        elif roll == 13:
            properties["blob"] = "z" * self.pick([60_000, 70_000, 300_000])  # around the 64 KB event limit
        elif roll == 14:
            properties["nested"] = self.nested(self.pick([64, 500, 3_000]))
        elif roll == 15:
            bad["messageId"] = self.pick([None, RawJson("null")])
        elif roll == 16:
            properties[self.text(4)] = self.text(2_000)
        else:
            bad["anonymousId"] = self.pick(["", "a" * 201, 0, RawJson("1" * 300)])
        if roll in (2, 3, 5, 13, 14, 16):
            bad["properties"] = properties | {"campaign": campaign}
        return bad

    # --- bodies --------------------------------------------------------------------------

    def messages(self, count: int, prefix: str, campaign: str, hostile: float) -> tuple[list[Any], tuple[str | None, ...], bool]:
        """Messages, their tracked ids, and whether every one is valid."""
        out: list[Any] = []
        ids: list[str | None] = []
        clean = True
        for _ in range(count):
            roll = self.rng.random()
            ident = None if roll < 0.1 else self.next_id(prefix)
            message = self.message(ident, campaign, absent=roll < 0.05)
            if ident is None:  # the API derives its id from the body: no two bodies may be the same
                message["properties"]["seq"] = self.next_id("seq-")
            if self.chance(hostile):
                message = self.twisted(message)
                clean = False
            given = message.get("messageId")
            ids.append(given if isinstance(given, str) and given.startswith(TRACKED) else None)
            out.append(message)
        return out, tuple(ids), clean

    def batch_text(self, messages: list[Any], shape: str, style: str) -> str:
        if shape == "array":
            return dump(messages, self.rng, style)
        envelope: dict[str, Any] = {"batch": messages}
        if shape == "context":  # a batch-level context for the messages without one
            envelope["context"] = {"library": {"name": "analytics-python", "version": "2.3"}, "userAgent": UA}
        if self.chance(0.2):
            envelope["sentAt"] = self.time_text(self.now)
        if self.chance(0.1):
            envelope["writeKey"] = "ignored"
        return dump(envelope, self.rng, style)

    def ndjson_text(self, messages: list[Any], style: str, broken: bool) -> str:
        compact = style not in ("indent", "crlf", "spaced")  # one message per line
        lines = [dump(m, self.rng, style if compact else "compact") for m in messages]
        out: list[str] = []
        for line in lines:
            if self.chance(0.2):
                out.append(self.pick(["", " ", "\t", "\r"]))  # blank lines are skipped
            out.append(line + self.pick(["", " ", "\t"]))
        if broken:
            out.insert(self.at(len(out) + 1), self.pick(["{oops", "[", '{"type": "track"', "}", "null,", "\x00", "{}{}"]))
        end = self.pick(["\n", "\r\n"])
        return end.join(out) + self.pick(["", end, end * 3])

    def encode(self, body: bytes) -> tuple[bytes, str | None, bool]:
        """The body compressed or not, its Content-Encoding, and whether it is well-formed."""
        roll = self.rng.random()
        if roll < 0.55:
            return body, self.pick([None, None, "identity", ""]), True
        if roll < 0.75:
            return gzip.compress(body, compresslevel=self.rng.randint(1, 9)), self.pick(["gzip", "gzip", "GZIP", " gzip "]), True
        if roll < 0.83:
            cuts = sorted(self.at(len(body) + 1) for _ in range(self.rng.randint(1, 4)))
            pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
            return b"".join(gzip.compress(p) for p in pieces), "gzip", True  # several members, one body
        if roll < 0.9:
            return zlib.compress(body), "deflate", True
        packed = gzip.compress(body)
        hostile = [
            (packed[: self.at(len(packed))], "gzip"),  # truncated
            (packed + self.pick([b"garbage", b"\x1f\x8b", b"\x00" * 8, b"\n", packed[:12]]), "gzip"),  # trailing bytes
            (zlib.compress(body)[2:-4], "deflate"),  # raw deflate, no zlib header
            (body, "gzip"),  # declared, not done
            (packed, self.pick(["br", "compress", "gzip, identity", "x-gzip", "zstd", "gzip;q=1", "\t"])),
            (gzip.compress(packed), "gzip"),  # twice
            (packed[:10] + bytes(b ^ 0x20 for b in packed[10:20]) + packed[20:], "gzip"),  # flipped bits in the data
        ]
        chosen, encoding = self.pick(hostile)
        return chosen, encoding, False

    # --- headers -------------------------------------------------------------------------

    def auth(self) -> tuple[list[tuple[str, str]], str, bool]:
        """Authorization (or a query string), and whether it names the write key."""
        key = self.key
        roll = self.rng.random()
        if roll < 0.75:
            good = [
                ("Authorization", "Basic " + base64.b64encode(f"{key}:".encode()).decode()),
                ("Authorization", "Basic " + base64.b64encode(key.encode()).decode()),  # no colon
                ("Authorization", f"Bearer {key}"),
                ("Authorization", f"bearer  {key} "),
            ]
            return [self.pick(good)], "", True
        if roll < 0.8:
            return [], f"?writeKey={key}", True
        bad = [
            "", "Basic", "Basic ", "Basic !!!", "Basic " + key, "Basic " + base64.b64encode(b"\xff\xfe:").decode(),
            "Basic " + base64.b64encode(b":" + key.encode()).decode(), "Basic " + base64.b64encode(f"{key}x:".encode()).decode(),
            "Basic " + base64.b64encode(f"{key}:".encode()).decode()[:-2], "Bearer", "Bearer ", f"Bearer {key}x",
            f"Bearer {key[:-1]}", "Token " + key, key, "Bearer " + "k" * 8_000, "Bearer é", "Digest username=x", "Basic =",
            "Basic " + "A" * 10_001,
        ]  # fmt: skip
        choice = self.rng.random()
        if choice < 0.15:
            return [], self.pick(["", "?writeKey=", "?writeKey=nope", "?writeKey=%ff", f"?writekey={key}"]), False
        return [("Authorization", self.pick(bad))], "", False

    def content_type(self, ndjson: bool) -> tuple[str | None, bool]:
        """A Content-Type for the body, and whether the API reads the body as it is meant."""
        if self.chance(0.88):
            if ndjson:
                return self.pick(["application/x-ndjson", "application/ndjson", "application/x-ndjson; charset=utf-8"]), True
            return self.pick(["application/json", "application/json; charset=utf-8", "text/plain", "APPLICATION/JSON", None]), True
        odd = ["text/html", "application/xml", "multipart/form-data; boundary=x", "application/octet-stream", "", "json",
               "application/json+ld", "application/x-www-form-urlencoded", ";", "application/ndjson+x", "text/csv", "*/*"]  # fmt: skip
        return self.pick(odd), False

    def extras(self) -> tuple[list[tuple[str, str]], bool]:
        """Headers that must change nothing (and whether they do not): Idempotency-Key, X-Forwarded-For, others."""
        out: list[tuple[str, str]] = []
        fine = True
        self.serial += 1
        if self.chance(0.2):  # unique per request, or derived ids would repeat across requests
            value = self.pick([f"idem-{self.serial}", f"ÿ-{self.serial}", f"{self.serial} with spaces", f"{self.serial}:" + "k" * 150])
            if self.chance(0.1):
                value, fine = "i" * 300 + str(self.serial), False  # derived ids over the 200-character limit
            out.append(("Idempotency-Key", value))
        if self.chance(0.2):
            out.append(("X-Forwarded-For", self.pick(["81.2.69.160", "1.2.3.4, 5.6.7.8", "not-an-ip", "", "::1", "999.999.1.1", "\t"])))
        if self.chance(0.05):
            out.append(("Accept-Encoding", "gzip"))
        if self.chance(0.05):
            out.append(("Content-Type", "text/html"))  # a second one
            fine = False
        return out, fine

    # --- requests ------------------------------------------------------------------------

    def tracked(self) -> Shot:
        """Known messages in any layout, body shape, encoding and headers."""
        single = self.chance(0.2)
        hostile = self.pick([0.0, 0.0, 0.0, 0.15, 0.5])
        count = 1 if single else self.pick([1, 2, 3, 5, 8, 15, 40])
        messages, ids, valid = self.messages(count, TRACKED, CAMPAIGN, hostile)
        style = self.pick(LAYOUTS)
        broken = False
        if single:
            path = self.pick(SINGLE_PATHS)
            if self.chance(0.3):  # the path gives the type
                messages[0] = {k: v for k, v in messages[0].items() if k != "type"}
                kind = path.rsplit("/", 1)[1]
                if kind == "track" and "event" not in messages[0]:
                    messages[0]["event"] = "from-path"
            ndjson = False
            text = dump(messages[0], self.rng, style)
        else:
            path = self.pick(BATCH_PATHS)
            ndjson = self.chance(0.3)
            if ndjson:
                broken = self.chance(0.2)
                text = self.ndjson_text(messages, style, broken)
            else:
                text = self.batch_text(messages, self.pick(["envelope", "envelope", "array", "context"]), style)
        body, encoding, well_formed = self.encode(text.encode())
        auth, query, authorized = self.auth()
        content_type, readable = self.content_type(ndjson)
        extras, harmless = self.extras()
        headers = list(auth)
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        if encoding is not None:
            headers.append(("Content-Encoding", encoding))
        headers += extras
        if self.chance(0.03):
            path = self.pick(UNKNOWN_PATHS)
        clean = valid and well_formed and authorized and readable and harmless and not broken and path in BATCH_PATHS + SINGLE_PATHS
        shot = Shot("tracked", "POST", path + query, headers, body, ids, clean)
        if clean:
            self.sent_clean.append(shot)
        return shot

    def again(self) -> Shot:
        """An earlier clean request, byte for byte: a retry."""
        if not self.sent_clean:
            return self.tracked()
        earlier = self.pick(self.sent_clean)
        return Shot("retry", earlier.method, earlier.path, earlier.headers, earlier.body, earlier.ids, False, again=True)

    def mutated(self) -> Shot:
        """A valid body, truncated or damaged: byte flips, inserted and deleted characters, cut at a random place."""
        messages, _, _ = self.messages(self.pick([1, 2, 4, 8]), MUTANT, MUTANT_CAMPAIGN, 0.1)
        ndjson = self.chance(0.25)
        text = self.ndjson_text(messages, "compact", False) if ndjson else self.batch_text(messages, "envelope", self.pick(LAYOUTS))
        data = bytearray(text.encode())
        for _ in range(self.rng.randint(1, 6)):
            if not data:
                break
            at = self.at(len(data))
            roll = self.rng.randint(0, 5)
            if roll == 0:
                data[at] ^= 1 << self.rng.randint(0, 7)
            elif roll == 1:
                data.insert(at, self.pick(list(b'{}[]",:\\ \x00\xff\n0e-')))
            elif roll == 2:
                del data[at]
            elif roll == 3:
                del data[at:]  # truncated
            elif roll == 4:
                data[at:at] = data[at : at + self.rng.randint(1, 40)]  # a slice repeated
            else:
                data[at] = self.pick(list(b"\"'{}[],:"))
        body, encoding, _ = self.encode(bytes(data))
        path = self.pick(BATCH_PATHS * 3 + SINGLE_PATHS)
        headers = [("Authorization", f"Bearer {self.key}"), ("Content-Type", "application/x-ndjson" if ndjson else "application/json")]
        if encoding:
            headers.append(("Content-Encoding", encoding))
        return Shot("mutated", "POST", path, headers, body)

    def renested(self) -> Shot:
        """Valid messages one level too deep or too shallow."""
        messages, _, _ = self.messages(self.pick([1, 2, 3]), MUTANT, MUTANT_CAMPAIGN, 0.0)
        shapes: list[Any] = [
            {"batch": {"batch": messages}}, {"batch": [messages]}, [[m] for m in messages], {"batch": [{"batch": messages}]},
            [{"batch": messages}], {"batch": messages[0]}, {"messages": messages}, {"data": {"batch": messages}},
            messages[0]["properties"], {"batch": [{"message": m} for m in messages]}, {"batch": [{"properties": m} for m in messages]},
            {"batch": [dump(m) for m in messages]}, [[[[messages]]]], {"batch": messages, "batch ": []}, {"Batch": messages},
            {"type": "track", "batch": messages},
        ]  # fmt: skip
        text = dump(self.pick(shapes), self.rng, self.pick(LAYOUTS))
        path = self.pick(BATCH_PATHS + SINGLE_PATHS)
        return Shot("renested", "POST", path, [("Authorization", f"Bearer {self.key}")], text.encode())

    def random_bytes(self) -> Shot:
        size = self.pick([0, 1, 2, 16, 300, 4_096, 70_000])
        body = self.rng.randbytes(size)
        if self.chance(0.3):
            body = self.pick([b"\x1f\x8b\x08\x00", b"\xef\xbb\xbf", b"\xff\xfe", b"[", b'{"batch":']) + body
        headers = [("Authorization", f"Bearer {self.key}")]
        if self.chance(0.3):
            headers.append(("Content-Encoding", self.pick(["gzip", "deflate"])))
        if self.chance(0.3):
            headers.append(("Content-Type", "application/x-ndjson"))
        return Shot("random", "POST", self.pick(BATCH_PATHS + SINGLE_PATHS + UNKNOWN_PATHS), headers, body)

    def literal(self) -> Shot:
        """Small bodies that are not what a batch is, and odd methods."""
        body = self.pick(
            [
                b"", b" ", b"\r\n", b"{}", b"[]", b"null", b"true", b"0", b'"batch"', b"NaN", b"Infinity", b"-Infinity", b'{"batch": null}',
                b'{"batch": {}}', b'{"batch": "x"}', b'{"batch": [null, 1, "x", [], true]}', b'{"batch": []}', b"[null]", b"[{}]",
                b'{"batch": [{}]}', b'{"batch": [], "context": 5}', b'{"batch": [{"type": "track"}], "context": []}',
                b'{"batch": [1e400]}', b'{"batch": [' + b"9" * 5_000 + b"]}", b'{"batch": [], "batch": 1}', b"\xef\xbb\xbf{}",
                b'{"batch": [{"type": "track", "event": "e", "userId": "u", "properties": {"campaign": "mutant"}}]}\x00',
                b"[" * 200_000, b"{" * 10_000, b'{"a":' * 10_000, b'"' + b"\\" * 9_999 + b'"', b'{"batch": [' + b"{}," * 2_001 + b"{}]}",
            ]
        )  # fmt: skip
        method = self.pick(["POST"] * 8 + ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
        path = self.pick(BATCH_PATHS + SINGLE_PATHS + ["/v1/screen", "/v1/group", "/v1/alias"] + UNKNOWN_PATHS)
        content_type = self.pick(["application/json", "application/x-ndjson", "text/plain"])
        return Shot("literal", method, path, [("Authorization", f"Bearer {self.key}"), ("Content-Type", content_type)], body)

    def huge(self) -> Shot:
        """Bodies at and over the request limits: 2,000 events and more, 5 MB and more, a gzip bomb."""
        roll = self.rng.randint(0, 4)
        auth = [("Authorization", f"Bearer {self.key}")]
        if roll == 0:
            messages = [{"type": "track", "event": "e", "userId": "u", "properties": {"campaign": MUTANT_CAMPAIGN}}] * 2_001
            return Shot("huge", "POST", "/v1/batch", auth, dump({"batch": messages}).encode())
        if roll == 1:
            return Shot("huge", "POST", "/v1/batch", auth, b'{"batch": [' + b" " * (5 * 1024 * 1024 + 1) + b"]}")
        if roll == 2:
            bomb = gzip.compress(b'{"batch": [' + b" " * (6 * 1024 * 1024) + b"]}")
            return Shot("huge", "POST", "/v1/batch", [*auth, ("Content-Encoding", "gzip")], bomb)
        if roll == 3:
            line = b'{"type": "track", "event": "e", "userId": "u", "properties": {"campaign": "mutant"}}\n'
            return Shot("huge", "POST", "/v1/batch", [*auth, ("Content-Type", "application/x-ndjson")], line * 2_001)
        return Shot("huge", "POST", "/v1/track", auth, b'{"type": "track", "event": "' + b"e" * (5 * 1024 * 1024) + b'"}')

    def raw(self) -> Raw:
        """Bytes below the HTTP client: bad Content-Length, slow and partial bodies, chunked bodies, pipelining."""
        messages, ids, _ = self.messages(self.rng.randint(1, 4), TRACKED, CAMPAIGN, 0.0)
        body = dump({"batch": messages}).encode()
        head = f"POST /v1/batch HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer {self.key}\r\nContent-Type: application/json\r\n".encode()
        close = b"Connection: close\r\n"
        roll = self.rng.randint(0, 9)
        length = f"Content-Length: {len(body)}\r\n".encode()
        known = (ids,)
        cut = 1 + self.at(len(body) - 2)  # inside the JSON: never a complete body
        if roll == 0:
            value = self.pick([b"abc", b"-1", b"1e3", b" ", b"0x10", b"99999999999999999999999", b"12, 12", b"+5", b"\xb2"])
            return Raw("raw-bad-length", (head + close + b"Content-Length: " + value + b"\r\n\r\n" + body,), ids=known)
        if roll == 1:
            return Raw("raw-two-lengths", (head + close + length + b"Content-Length: 3\r\n\r\n" + body,), ids=known)
        if roll == 2:  # the body stops inside the JSON and the client waits: no answer is due
            return Raw("raw-partial-wait", (head + close + length + b"\r\n" + body[:cut],), silent_ok=True, ids=known)
        if roll == 3:  # the body stops inside the JSON and the client stops writing
            return Raw("raw-partial-close", (head + close + length + b"\r\n" + body[:cut],), close_write=True, silent_ok=True, ids=known)
        if roll == 4:  # a slow body: pieces with pauses, complete in the end
            step = max(1, len(body) // 3)
            pieces = (head + close + length + b"\r\n", *[body[i : i + step] for i in range(0, len(body), step)])
            return Raw("raw-slow", pieces, pause=0.15, ids=known, clean=True)
        if roll == 5:  # chunked, in pieces cut at random places
            cuts = sorted({self.at(len(body)) for _ in range(self.rng.randint(1, 12))} - {0})
            pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
            chunks = b"".join(f"{len(c):x}".encode() + self.pick([b"", b";ext=1"]) + b"\r\n" + c + b"\r\n" for c in pieces)
            return Raw(
                "raw-chunked", (head + close + b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n",), ids=known, clean=True
            )
        if roll == 6:
            bad = self.pick([b"zz\r\n{}\r\n0\r\n\r\n", b"ffffffffffffffff\r\n{}\r\n", b"5\r\n{}\r\n0\r\n\r\n", b"-1\r\n\r\n", b"3\r\n{}"])
            return Raw("raw-bad-chunked", (head + close + b"Transfer-Encoding: chunked\r\n\r\n" + bad,), close_write=True, silent_ok=True)
        if roll == 7:  # declares less than it sends: the rest is a broken next request
            return Raw("raw-short-length", (head + close + b"Content-Length: 5\r\n\r\n" + body,), ids=known)
        if roll == 8:  # two requests on one connection; the second one closes it
            first = head + length + b"\r\n" + body
            messages2, ids2, _ = self.messages(2, TRACKED, CAMPAIGN, 0.0)
            body2 = dump({"batch": messages2}).encode()
            second = head + close + f"Content-Length: {len(body2)}\r\n\r\n".encode() + body2
            return Raw("raw-pipelined", (first + second,), ids=(ids, ids2), clean=True)
        request_line = self.pick(
            [b"POST /v1/batch HTTP/1.0\r\n", b"POST /v1/batch HTTP/9.9\r\n", b"POST  /v1/batch HTTP/1.1\r\n", b"POST /v1/batch\r\n",
             b"\x16\x03\x01\x00\xa5\x01\x00", b"POST /v1/batch HTTP/1.1\r\nExpect: 100-continue\r\n"]
        )  # fmt: skip
        auth = f"Host: fuzz\r\nAuthorization: Bearer {self.key}\r\n".encode()
        # Not half-closed: uvicorn drops the answer to a complete request whose client half-closes (its events are kept).
        return Raw("raw-request-line", (request_line + auth + close + length + b"\r\n" + body,), silent_ok=True, ids=known)

    def requests(self, count: int) -> list[Shot | Raw]:
        """``count`` requests of every kind, in a seeded order."""
        makers = [
            (0.50, self.tracked), (0.03, self.again), (0.19, self.mutated), (0.06, self.renested), (0.06, self.random_bytes),
            (0.10, self.literal), (0.004, self.huge), (0.02, self.raw),
        ]  # fmt: skip
        weights = [w for w, _ in makers]
        return [self.rng.choices([m for _, m in makers], weights)[0]() for _ in range(count)]
