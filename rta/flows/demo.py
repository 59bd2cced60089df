"""A realistic synthetic shop: skewed countries, devices and campaigns, ~1M users, a funnel.

Vectorized with NumPy and Polars; a batch of 100K events takes a few tens of milliseconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from typing_extensions import override

from rta.flows.sources import SourceBatch

COUNTRIES = (
    "US IN GB DE BR FR CA JP ID MX IT ES AU KR NL TR PL RU PH VN SE AR CO TH NG EG ZA PK BE CH "
    "AT IR MY SA UA RO CL PE CZ PT GR IL DK FI NO IE NZ HU SG AE BD DZ MA KE VE EC GT KZ IQ SK "
    "BG HR RS LT SI LV EE BY AZ GE AM UZ LK NP MM KH LA MN TW HK MO BN QA KW BH OM JO LB SY YE "
    "TN LY SD ET TZ UG RW GH CI SN CM AO MZ ZM ZW BW NA MG MU BO PY UY CR PA HN NI SV DO CU JM "
    "HT TT BS BB PR IS LU MT CY AL MK BA ME MD KG TJ TM AF BT MV FJ PG SB VU WS TO KI NR TV FM "
    "MH PW GU AS MP VI AG DM GD KN LC VC BZ GY SR GF MQ GP RE YT SC KM DJ ER SO SS CF TD NE ML "
    "BF GN GW SL LR TG BJ GM CV ST GQ GA CG CD BI MW LS SZ AD MC SM LI VA GL FO GI IM JE GG AX"
).split()
DEVICES = ("mobile", "desktop", "tablet", "tv")
DEVICE_WEIGHTS = (0.55, 0.38, 0.06, 0.01)
CAMPAIGNS = ("(none)", *(f"{src}_{n:02d}" for src in ("google", "facebook", "newsletter", "tiktok", "partner") for n in range(10)))
EVENTS = ("page_view", "click", "search", "add_to_cart", "purchase", "signup")
PATHS = (
    "/",
    "/products",
    "/search",
    "/cart",
    "/checkout",
    "/pricing",
    "/blog",
    "/about",
    "/account",
    "/help",
    *(f"/products/{i}" for i in range(20)),
)
USERS = 1_000_000


def _zipf_weights(n: int, s: float = 1.1) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


@dataclass(frozen=True)
class Population:
    """Per-user attributes, fixed for a seed: a user keeps their country, device and campaign."""

    seed: int = 7
    users: int = USERS
    country: np.ndarray = field(init=False, repr=False)
    device: np.ndarray = field(init=False, repr=False)
    campaign: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        object.__setattr__(self, "country", rng.choice(len(COUNTRIES), self.users, p=_zipf_weights(len(COUNTRIES))))
        object.__setattr__(self, "device", rng.choice(len(DEVICES), self.users, p=DEVICE_WEIGHTS))
        campaign_w = np.concatenate([[0.45], 0.55 * _zipf_weights(len(CAMPAIGNS) - 1)])
        object.__setattr__(self, "campaign", rng.choice(len(CAMPAIGNS), self.users, p=campaign_w))


# Where in a session each kind of event happens (fraction of its length; None: anywhere).
_POSITION = {"page_view": None, "click": None, "search": None, "add_to_cart": 0.8, "purchase": 0.95, "signup": 0.5}


def _sessions(pop: Population, count: int, start_ms: int, end_ms: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Events of ``count`` sessions as (user, timestamp ms, event kind) arrays, in session order."""
    user = np.minimum((pop.users * rng.random(count) ** 3).astype(np.int64), pop.users - 1)  # heavy users
    # A session *ends* in the window: its earlier events reach back, none lies in the future.
    finish = rng.integers(start_ms, max(end_ms, start_ms + 1), count)
    length = rng.exponential(180_000, count).astype(np.int64) + 1_000  # ~3 minutes
    views = rng.geometric(0.4, count)
    cart = rng.binomial(1, 0.18, count)
    per_kind = {
        "page_view": views,
        "click": rng.binomial(views, 0.5),
        "search": rng.binomial(1, 0.3, count),
        "add_to_cart": cart,
        "purchase": cart * rng.binomial(1, 0.35, count),
        "signup": rng.binomial(1, 0.02, count),
    }
    users, times, kinds = [], [], []
    for kind, per_session in per_kind.items():
        idx = np.repeat(np.arange(count), per_session)
        where = _POSITION[kind]
        fraction = rng.random(len(idx)) if where is None else np.full(len(idx), where)
        users.append(user[idx])
        times.append(finish[idx] - ((1 - fraction) * length[idx]).astype(np.int64))
        kinds.append(np.full(len(idx), EVENTS.index(kind)))
    return np.concatenate(users), np.concatenate(times), np.concatenate(kinds)


def generate(pop: Population, n: int, start_ms: int, end_ms: int, rng: np.random.Generator, id_prefix: str) -> pl.DataFrame:
    """``n`` events of shopping sessions ending in ``[start_ms, end_ms)``.

    A session belongs to one user and runs a funnel in time order: page views, clicks on some,
    maybe a search, an add-to-cart in ~18% of sessions, a purchase in ~35% of those, rarely a
    signup. About 2% of events arrive minutes late and 0.2% hours late.
    """
    return _frame(pop, _draw(pop, n, start_ms, end_ms, rng), pl.format("{}-{}", pl.lit(id_prefix), pl.int_range(pl.len())))


def _draw(pop: Population, n: int, start_ms: int, end_ms: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The random part of :func:`generate`: per event its user, time (ms), kind, path, revenue and load time."""
    parts: list[tuple[np.ndarray, ...]] = []
    drawn = 0
    while drawn < n:  # ~4.3 events per session: one draw almost always suffices
        part = _sessions(pop, (n - drawn) // 3 + 3, start_ms, end_ms, rng)
        parts.append(part)
        drawn += len(part[0])
    if not parts:  # no events
        parts.append(tuple(np.zeros(0, dtype=np.int64) for _ in range(3)))
    keep = rng.permutation(drawn)[:n]  # arrival order within a batch is arbitrary
    who, ts, kind = (np.concatenate([p[i] for p in parts])[keep] for i in range(3))
    late = rng.random(n)
    ts = ts - np.where(late < 0.02, rng.exponential(300_000, n), 0).astype(np.int64)
    ts = ts - np.where(late < 0.002, rng.integers(3_600_000, 6 * 3_600_000, n), 0)
    purchase = kind == EVENTS.index("purchase")
    page_view = kind == EVENTS.index("page_view")
    revenue = np.where(purchase, np.round(rng.lognormal(3.6, 0.8, n), 2), np.nan)
    load_ms = np.where(page_view, np.round(rng.lognormal(6.0, 0.5, n)), np.nan)
    path = rng.choice(len(PATHS), n, p=_zipf_weights(len(PATHS)))
    return {"user": who, "ts": ts, "kind": kind, "path": path, "revenue": revenue, "load_ms": load_ms}


def _frame(pop: Population, drawn: dict[str, np.ndarray], insert_id: pl.Expr) -> pl.DataFrame:
    who, kind = drawn["user"], drawn["kind"]
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(drawn["ts"], dtype=pl.Int64).cast(pl.Datetime("ms", "UTC")),
            "event": pl.Series(EVENTS, dtype=pl.String)[kind],
            "user": pl.Series(who, dtype=pl.Int64),
            "country": pl.Series(COUNTRIES, dtype=pl.String)[pop.country[who]],
            "device": pl.Series(DEVICES, dtype=pl.String)[pop.device[who]],
            "campaign": pl.Series(CAMPAIGNS, dtype=pl.String)[pop.campaign[who]],
            "path": pl.Series(PATHS, dtype=pl.String)[drawn["path"]],
            "revenue": pl.Series(drawn["revenue"]).fill_nan(None),
            "load_ms": pl.Series(drawn["load_ms"]).fill_nan(None),
        }
    )
    return frame.with_columns(pl.format("u{}", pl.col("user")).alias("user_id"), insert_id.alias("insert_id")).drop("user")


HOUR_MS = 3_600_000
# Where visitors come from (source, medium) for the streams that declare them (the web template):
# paid campaigns by their network, the rest by a per-user draw, most often direct or a search engine.
_CAMPAIGN_SOURCES = {"google": ("Google", "cpc"), "facebook": ("Facebook", "paid"), "newsletter": ("Newsletter", "email"),
                     "tiktok": ("TikTok", "paid"), "partner": ("partner", "referral")}  # fmt: skip
_ORGANIC = (
    ("Direct", "(none)", 0.45), ("Google", "organic", 0.32), ("Bing", "organic", 0.06), ("DuckDuckGo", "organic", 0.03),
    ("Twitter", "social", 0.05), ("Reddit", "social", 0.04), ("Hacker News", "referral", 0.03), ("GitHub", "referral", 0.02),
)  # fmt: skip


def with_traffic(frame: pl.DataFrame, dims: tuple[str, ...]) -> pl.DataFrame:
    """``frame`` with ``source`` and ``medium`` columns when the stream declares them (else as it is:
    undeclared columns would be kept as properties)."""
    wanted = [d for d in ("source", "medium") if d in dims]
    if not wanted:
        return frame
    weights = np.cumsum([w for *_, w in _ORGANIC])
    draw = (pl.col("user_id").hash(7) % 10_000).cast(pl.Float64) / 10_000  # a user keeps their way in
    organic = pl.lit(len(_ORGANIC) - 1)
    for i in reversed(range(len(_ORGANIC))):
        organic = pl.when(draw < weights[i] / weights[-1]).then(pl.lit(i)).otherwise(organic)
    network = pl.col("campaign").str.split("_").list.first()
    columns = {}
    for j, name in enumerate(("source", "medium")):
        paid = network.replace_strict({k: v[j] for k, v in _CAMPAIGN_SOURCES.items()}, default=None)
        free = organic.replace_strict(list(range(len(_ORGANIC))), [o[j] for o in _ORGANIC])
        columns[name] = pl.when(pl.col("campaign") == "(none)").then(free).otherwise(paid).alias(name)
    return frame.with_columns(columns[d] for d in wanted)


def anchored(pop: Population, per_hour: int, start_ms: int, end_ms: int, *, id_prefix: str = "demo") -> pl.DataFrame:
    """The demo's events with times in ``[start_ms, end_ms)``, the same whenever they are asked for.

    Time is cut into hours of UTC, and each hour's ``per_hour`` events (sessions ending in it)
    depend only on the population (its seed and size), the rate and the hour, and so do their
    ids (``<prefix>-<seed>-<users>-<rate>-<hour>-<i>``). So the same range gives the same events,
    and a later range repeats the events it shares with an earlier one (same ids, same values)
    and adds the new ones: a load that skips ids loaded before adds nothing when run again, and
    only the time since when run later. The hours after ``end_ms`` are not drawn yet: the few of
    their events that arrive hours late (with times inside the range) come with a later call.
    """

    def hour_of(hour: int, n: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([pop.seed, pop.users, per_hour, hour])
        drawn = _draw(pop, n, hour * HOUR_MS, (hour + 1) * HOUR_MS, rng)
        return drawn | {"hour": np.full(n, hour, dtype=np.int64), "index": np.arange(n, dtype=np.int64)}

    draws = [hour_of(hour, per_hour) for hour in range(start_ms // HOUR_MS, -(-end_ms // HOUR_MS))] or [hour_of(0, 0)]
    drawn = {k: np.concatenate([d[k] for d in draws]) for k in draws[0]}
    inside = (drawn["ts"] >= start_ms) & (drawn["ts"] < end_ms)
    drawn = {k: v[inside] for k, v in drawn.items()}
    prefix = f"{id_prefix}-{pop.seed}-{pop.users}-{per_hour}-"
    ids = pl.format("{}{}-{}", pl.lit(prefix), pl.Series(drawn["hour"]), pl.Series(drawn["index"]))
    return _frame(pop, drawn, ids)


class _DemoPartition(StatelessSourcePartition[SourceBatch]):
    def __init__(self, source: DemoSource, worker: int) -> None:
        self._src = source
        self._rng = np.random.default_rng([source.seed, worker])
        self._pop = Population(source.seed)
        self._worker = worker
        self._index = 0
        now = int(source.clock() * 1000)
        self._history = now - source.history_seconds * 1000
        self._history_left = source.history_events
        # Milliseconds of history per event: batches cover the window evenly, oldest first.
        self._history_step = source.history_seconds * 1000 / max(source.history_events, 1)
        # Live traffic is counted from where it began, so a rate below one event per wake-up
        # (a week's history is ~1.7 events/s) keeps its fractions instead of rounding them away.
        self._live_start = self._last = now
        self._live_sent = 0
        self._stopped = False
        self._next_awake = time.monotonic()
        if worker < source.workers:
            source.live_since = now / 1000
        if self._history_left == 0 and worker < source.workers:
            source.backfilled.set()

    def _key(self) -> str:
        key = f"demo:{self._src.run_id}:{self._worker}:{self._index}"
        self._index += 1
        return key

    @override
    def next_batch(self) -> list[SourceBatch]:
        if self._worker >= self._src.workers or self._stopped:
            raise StopIteration
        if self._src.stop.is_set():
            # The traffic owed up to the stop comes first: the flow's worker polls its sources
            # between batches, and after a long backfill the first poll may come after the stop.
            self._stopped = True
            if self._history_left > 0 or not (batch := self._live()):
                raise StopIteration
            return batch
        if self._history_left > 0:  # backfill the past first, in big batches
            n = min(self._history_left, 100_000)
            span = int(n * self._history_step)
            key = self._key()
            frame = with_traffic(generate(self._pop, n, self._history, self._history + span, self._rng, key), self._src.dims)
            self._history += span
            self._history_left -= n
            self._src.history_sent += n
            if self._history_left == 0:
                self._src.backfilled.set()
            return [SourceBatch(key, self._src.stream, frame, f"demo-{self._worker}")]
        return self._live()

    def _live(self) -> list[SourceBatch]:
        now = int(self._src.clock() * 1000)
        self._next_awake = time.monotonic() + self._src.interval
        if self._src.paused.is_set():  # the time paused has no traffic
            self._live_start, self._live_sent, self._last = now, 0, now
            return []
        n = int(self._src.rate * (now - self._live_start) / 1000) - self._live_sent
        if n <= 0:  # a slow demo: wait for the next event instead of polling
            return []
        key = self._key()
        frame = with_traffic(generate(self._pop, n, self._last, now, self._rng, key), self._src.dims)
        self._last = now
        self._live_sent += n
        self._src.live_sent += n
        self._src.live_until = now / 1000
        return [SourceBatch(key, self._src.stream, frame, f"demo-{self._worker}")]

    @override
    def next_awake(self) -> datetime | None:
        delay = self._next_awake - time.monotonic()
        return datetime.now(UTC) + timedelta(seconds=max(delay, 0)) if delay > 0 else None


LIVE_RATE = 20_000  # demo events per second without a history to match


def live_rate(asked: float | None, history_seconds: int, history_events: int) -> float:
    """Live demo events per second: as asked, else the backfilled history's own rate (to three
    significant digits), so charts stay level instead of the last bucket towering over the week
    (else :data:`LIVE_RATE`).

    >>> live_rate(None, 7 * 86_400, 1_000_000), live_rate(500, 86_400, 10), live_rate(None, 0, 0), live_rate(None, 3_600, 36_000)
    (1.65, 500, 20000, 10)
    """
    if asked is not None:
        return asked
    if not (history_seconds and history_events):
        return LIVE_RATE
    rate = float(f"{history_events / history_seconds:.3g}")
    return int(rate) if rate.is_integer() else rate


class DemoSource(DynamicSource[SourceBatch]):
    """Live synthetic traffic at ``rate`` events/s, after ``history_events`` backfilled events.

    ``backfilled`` is set once the last history batch went into the flow (at once without a
    history): `rta run` counts ``--duration`` from then. ``history_sent`` and ``live_sent``
    count the events generated so far; live events run from ``live_since``, where the history ends,
    to ``live_until``.
    """

    def __init__(
        self,
        stream: str,
        *,
        dims: tuple[str, ...] = (),
        rate: float = LIVE_RATE,
        interval: float = 0.5,
        history_seconds: int = 0,
        history_events: int = 0,
        seed: int = 7,
        stop: threading.Event | None = None,
        paused: threading.Event | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stream = stream
        self.dims = dims  # the stream's dimensions: sources and mediums are drawn when it declares them
        self.rate = rate
        self.interval = interval
        self.history_seconds = history_seconds
        self.history_events = history_events if history_seconds else 0
        self.seed = seed
        self.stop = stop or threading.Event()
        self.paused = paused or threading.Event()  # set: no traffic, but the flow keeps running
        self.clock = clock  # wall time in seconds: what live traffic's timestamps and amount follow
        self.backfilled = threading.Event()
        self.history_sent = 0
        self.live_sent = 0
        self.live_since: float | None = None  # when the history ends and live traffic begins (clock seconds)
        self.live_until: float | None = None  # the newest live event's end of range
        self.workers = 1  # workers that generate (rate each); in a cluster the others stay quiet
        self.run_id = f"{time.time_ns():x}"  # demo batches of different runs never deduplicate

    @override
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _DemoPartition:
        return _DemoPartition(self, worker_index)
