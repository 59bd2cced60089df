"""The SQL console's checks without a store: the scope and function corpus, and a seeded fuzz.

`tests/golden/console/statements.sql` pairs each statement with what the console makes of it: the
SQL that runs, or the refusal. Set RTA_UPDATE_GOLDEN=1 to rewrite it, then review the diff.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlglot
import sqlglot.expressions as exp

from rta.errors import QueryError
from rta.query.console import check_sql, table_aliases
from tests.conftest import shop_plan

pytestmark = pytest.mark.core
CORPUS = Path(__file__).parent / "golden" / "console" / "statements.sql"
TABLES = table_aliases(shop_plan())
REAL_TABLES = frozenset(TABLES.values())


@dataclass(frozen=True, slots=True)
class Case:
    """One corpus entry: a title line, the statement, and what the console answers."""

    title: str
    statement: str
    expected: str


def read_corpus(path: Path = CORPUS) -> list[Case]:
    cases = []
    for block in path.read_text().strip().split("\n\n"):
        title, statement, expected = block.split("\n")
        assert title.startswith("# "), block
        cases.append(Case(title[2:], statement, expected))
    return cases


def answer(statement: str) -> str:
    """The SQL the console runs for a statement, or its refusal."""
    try:
        return check_sql(statement, TABLES).sql(dialect="clickhouse")
    except QueryError as err:
        return str(err)


def test_the_corpus_is_what_the_console_answers() -> None:
    cases = read_corpus()
    answers = [answer(c.statement) for c in cases]
    if os.environ.get("RTA_UPDATE_GOLDEN"):
        CORPUS.write_text("\n\n".join(f"# {c.title}\n{c.statement}\n{a}" for c, a in zip(cases, answers, strict=True)) + "\n")
        cases = read_corpus()
    for case, got in zip(cases, answers, strict=True):
        assert got == case.expected, f"{case.title}\n{case.statement}"
    refused = sum(a.startswith("refused: ") for a in answers)
    assert refused >= 40 and len(cases) - refused >= 15


def test_the_corpus_covers_each_probe_the_console_must_name() -> None:
    refusals = " ".join(c.expected for c in read_corpus() if c.expected.startswith("refused: "))
    probes = ["getServerSetting", "getSetting", "hasColumnInTable", "currentDatabase", "currentUser", "version", "hostName", "uptime"]
    probes += ["file", "url", "remote", "s3", "input", "dictGet", "joinGet", "system.settings"]
    for probe in probes:
        assert f"'{probe}'" in refusals or f"{probe}(" in refusals, probe


# Each common analyst function as analysts call it on the shop's tables, by table and family, `;` between
# calls; test_console.py runs each as SELECT <call> FROM <table>.
ANALYST_CALLS = {
    ("events", "aggregate"): """
        count(); count(DISTINCT user_id); countIf(event = 'purchase'); sum(revenue); sumIf(revenue, event = 'purchase');
        avg(load_ms); avgIf(load_ms, device = 'mobile'); min(timestamp); max(timestamp); any(country); anyLast(country);
        argMax(country, timestamp); argMin(country, timestamp); uniq(user_id); uniqExact(user_id); uniqIf(user_id, event = 'click');
        uniqCombined64(user_id); uniqHLL12(user_id); quantile(0.95)(load_ms); quantiles(0.5, 0.9)(load_ms); median(load_ms);
        quantileTDigest(0.95)(load_ms); quantileExact(0.5)(load_ms); quantileIf(0.9)(load_ms, device = 'mobile');
        stddevPop(load_ms); stddevSamp(load_ms); varPop(load_ms); varSamp(load_ms); corr(load_ms, revenue);
        covarPop(load_ms, revenue); groupArray(3)(country); groupUniqArray(country); topK(3)(country); sumMap([event], [1]);
        avgWeighted(load_ms, 1); sumOrNull(revenue); countDistinct(country); finalizeAggregation(uniqCombined64State(user_id));
        anyHeavy(country); entropy(country); groupBitOr(toUInt8(1)); sumArray([1, 2]); maxIf(revenue, event = 'purchase');
        countIfOrNull(event = 'x')
    """,
    ("events", "math"): """
        abs(-1.5); round(avg(load_ms), 2); floor(1.5); ceil(1.5); sqrt(4); exp(1); log(10); log10(100); log2(8); pow(2, 10);
        power(2, 3); intDiv(7, 2); modulo(7, 2); 7 % 2; greatest(1, 2); least(1, 2); sign(-3); truncate(1.55, 1); isNaN(0 / 0);
        isFinite(1); roundBankers(2.5); pi(); bitAnd(3, 1)
    """,
    ("events", "string"): """
        any(lower(country)); any(upper(country)); any(length(path)); any(lengthUTF8(path)); any(concat(country, '-', device));
        any(substring(path, 1, 2)); any(substr(path, 1, 2)); any(trim(path)); any(replaceAll(path, '/', '_'));
        any(replaceRegexpAll(path, '[0-9]', '')); any(position(path, '/')); any(startsWith(path, '/')); any(endsWith(path, 'x'));
        countIf(path LIKE '/p%'); countIf(path ILIKE '/P%'); countIf(match(path, '^/')); any(extract(path, '[a-z]+'));
        any(splitByChar('/', path)); any(arrayStringConcat(['a', 'b'], ',')); any(reverse(path)); any(leftPad(country, 4, '*'));
        any(format('{}-{}', country, device)); any(empty(path)); any(notEmpty(path)); any(base64Encode(path)); any(hex(country));
        any(left(path, 2)); any(right(path, 2)); any(domain('https://a.b/c')); any(extractURLParameter('https://a.b/?x=1', 'x'));
        any(JSONExtractString('{"a": "b"}', 'a')); any(JSONExtractInt('{"a": 1}', 'a')); any(cityHash64(user_id));
        any(sipHash64(user_id)); any(MD5(user_id)); any(formatReadableSize(1024)); any(formatReadableQuantity(1000));
        any(toString(toIPv4('1.2.3.4')))
    """,
    ("events", "datetime"): """
        now(); today(); yesterday(); any(toDate(timestamp)); any(toDateTime(timestamp)); any(toStartOfMinute(timestamp));
        any(toStartOfFiveMinutes(timestamp)); any(toStartOfFifteenMinutes(timestamp)); any(toStartOfHour(timestamp));
        any(toStartOfDay(timestamp)); any(toStartOfWeek(timestamp)); any(toMonday(timestamp)); any(toStartOfMonth(timestamp));
        any(toStartOfQuarter(timestamp)); any(toStartOfYear(timestamp)); any(toStartOfInterval(timestamp, INTERVAL 10 MINUTE));
        any(toYear(timestamp)); any(toMonth(timestamp)); any(toDayOfWeek(timestamp)); any(toHour(timestamp));
        any(toMinute(timestamp)); any(toYYYYMMDD(timestamp)); any(toUnixTimestamp(timestamp));
        any(toUnixTimestamp64Milli(timestamp)); any(fromUnixTimestamp(0)); any(dateDiff('minute', timestamp, now()));
        any(date_diff('hour', timestamp, now())); any(dateAdd(DAY, 1, timestamp)); any(addDays(timestamp, 1));
        any(subtractHours(timestamp, 1)); any(timestamp - INTERVAL 1 DAY); any(now() - toIntervalHour(1));
        any(formatDateTime(timestamp, '%Y-%m-%d')); any(date_trunc('day', timestamp)); any(toTimeZone(timestamp, 'Europe/Berlin'));
        any(parseDateTimeBestEffort('2026-01-01')); any(parseDateTimeBestEffortOrNull('x')); any(toISOWeek(timestamp));
        any(monthName(timestamp)); max(timestamp) > now() - INTERVAL 2 DAY
    """,
    ("events", "conditional"): """
        any(if(revenue > 10, 'big', 'small')); any(multiIf(revenue IS NULL, 0, revenue > 100, 2, 1)); any(coalesce(revenue, 0));
        any(ifNull(revenue, 0)); any(nullIf(country, '')); any(isNull(revenue)); any(isNotNull(revenue));
        any(CASE WHEN revenue > 10 THEN 1 ELSE 0 END); any(CASE device WHEN 'mobile' THEN 1 END); any(assumeNotNull(revenue));
        countIf(revenue BETWEEN 1 AND 10); countIf(NOT (country = 'US') OR device = 'mobile' AND event != 'click')
    """,
    ("events", "conversion"): """
        any(toInt64(load_ms)); any(toInt32OrZero(insert_id)); any(toUInt64OrNull(insert_id)); any(toFloat64(1));
        any(toFloat64OrZero(insert_id)); any(toDecimal64(revenue, 2)); any(toString(load_ms));
        any(CAST(ifNull(load_ms, 0) AS Int64)); any(ifNull(load_ms, 0)::Float32); any(CAST(load_ms AS Nullable(Int64)));
        any(toTypeName(revenue)); any(toDateOrNull('2026-01-01')); any(toDateTimeOrZero('x'));
        any(accurateCastOrNull(load_ms, 'UInt8')); any(toLowCardinality(country)); any(toBool(1))
    """,
    ("events", "array"): """
        any(range(3)); any([1, 2, 3]); any(array(1, 2)); any(has([1, 2], 1)); any(hasAny([1], [1, 2])); any(indexOf([1, 2], 2));
        any(arrayMap(x -> x * 2, [1, 2])); any(arrayFilter(x -> x > 1, [1, 2])); any(arraySum([1, 2]));
        any(arrayCount(x -> x > 1, [1, 2])); any(arraySort([2, 1])); any(arrayDistinct([1, 1])); any(arrayConcat([1], [2]));
        any(arraySlice([1, 2, 3], 1, 2)); any(arrayElement([1, 2], 1)); any([1, 2][1]); any(arrayJoin([1, 2]));
        any(arrayReduce('sum', [1, 2])); any(arrayEnumerate([5, 6])); any(arrayZip([1], ['a'])); any(arrayFlatten([[1], [2]]));
        any(arrayCumSum([1, 2])); any(arrayFirst(x -> x > 1, [1, 2])); any(arrayExists(x -> x > 1, [1, 2])); any(tuple(1, 'a'));
        any((1, 'a').1); any(tupleElement((1, 'a'), 2)); any(map('a', 1)); any(mapKeys(map('a', 1))); any(mapValues(map('a', 1)));
        any(length([1, 2])); any(emptyArrayString())
    """,
    ("traffic_1d", "sketch"): """
        sum(page_views__n); sum(revenue__sum) / nullIf(sum(purchases__n), 0); max(biggest_order__max);
        quantileTDigestMerge(0.95)(p95_load_ms__digest); sum(avg_load_ms__sum) / sum(avg_load_ms__n); min(bucket)
    """,
    ("audience_1d", "sketch"): """
        uniqCombined64Merge(12)(visitors__uniq); uniqCombined64MergeIf(12)(visitors__uniq, country = 'US');
        finalizeAggregation(any(visitors__uniq))
    """,
}
ANALYST_WINDOWED = [
    "SELECT country, count() AS n, row_number() OVER (ORDER BY count() DESC) AS r FROM events GROUP BY country",
    "SELECT country, rank() OVER (ORDER BY count() DESC) AS r, dense_rank() OVER (ORDER BY count() DESC) AS d FROM events GROUP BY country",
    "SELECT bucket, sum(page_views__n) AS v, lagInFrame(sum(page_views__n)) OVER (ORDER BY bucket) AS prev FROM traffic_1d GROUP BY bucket",
    "SELECT bucket, sum(sum(page_views__n)) OVER (ORDER BY bucket ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM"
    " traffic_1d GROUP BY bucket",
    "SELECT toStartOfHour(timestamp) AS h, count() FROM events GROUP BY h ORDER BY h WITH FILL STEP 3600",
    "SELECT country, count() FROM events GROUP BY country WITH TOTALS",
    "SELECT country, device, count() FROM events GROUP BY ROLLUP(country, device)",
    "SELECT event, count() FROM events GROUP BY event HAVING count() > 1 ORDER BY count() DESC LIMIT 2 BY event",
    "SELECT * EXCEPT (insert_id) FROM events LIMIT 1",
    "SELECT COLUMNS('load') FROM events LIMIT 1",
    "SELECT * FROM events PREWHERE country = 'US' WHERE device = 'mobile' LIMIT 1",
    "SELECT * FROM VALUES ((1), (2))",
    "SELECT * APPLY(toString) FROM events LIMIT 1",
    "SELECT uniqCombined64Merge(s) AS v FROM (SELECT uniqCombined64State(user_id) AS s FROM events)",
    "SELECT sumMerge(s) AS v, countMerge(n) AS c FROM (SELECT sumState(revenue) AS s, countState() AS n FROM events)",
    "SELECT quantilesTDigestMergeIf(0.5, 0.95)(p95_load_ms__digest, country = 'US') FROM traffic_1d",
]


def analyst_statements() -> list[str]:
    calls = [f"SELECT {call.strip()} AS v FROM {table}" for (table, _), text in ANALYST_CALLS.items() for call in text.split(";")]
    return calls + ANALYST_WINDOWED


def test_each_common_analyst_function_passes() -> None:
    statements = analyst_statements()
    assert len(statements) >= 200
    refused = {s: answer(s) for s in statements if answer(s).startswith("refused: ")}
    assert not refused


# --- the fuzz: random statements over allowed and refused names, with an oracle of their own ---

ALLOWED_SOURCES = ["events", "traffic_1d", "audience_1d", "ingest_stats", "rta_ingest_stats", "alert_history"]
REFUSED_SOURCES = ["rta_alert_state", "secret", "system.tables", "default.rta_alert_state", "numbers(10)", "merge('^rta')"]
REFUSED_SOURCES += ["file('/etc/passwd', 'LineAsString')", "url('http://127.0.0.1/')", "remote('127.0.0.1', system.one)"]
CTE_NAMES = ["t", "u", "events", "rta_alert_state", "secret", "ingest_stats"]
ALLOWED_EXPRS = ["count()", "sum(1)", "toStartOfHour(now())", "lower('A')", "if(1, 2, 3)", "coalesce(NULL, 1)", "round(1.25, 1)"]
ALLOWED_EXPRS += ["uniqCombined64Merge(12)(x)", "quantileTDigestMerge(0.5)(x)", "sumIf(1, 1)", "arrayMap(v -> v + 1, [1, 2])"]
ALLOWED_EXPRS += ["dateDiff('day', today(), now())", "toInt64OrZero('1')", "CAST(1 AS String)", "1 + 2", "'literal'"]
REFUSED_CALLS = ["version", "currentDatabase", "getSetting", "getServerSetting", "hostName", "uptime", "currentUser", "timezone"]
REFUSED_CALLS += ["hasColumnInTable", "file", "url", "s3", "dictGet", "joinGet", "sleep", "globalIn", "throwIf", "serverUUID"]
WRAPPERS = ["toString({})", "coalesce({}, 0)", "length(toString({}))", "if(1, {}, 0)", "arrayMap(v -> {}, [1])", "({}) + 1"]


@dataclass
class Truth:
    """What the generator put in a statement: the real tables it reads, the refused calls it makes."""

    tables: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    unchecked: bool = False  # a shape the console refuses whatever it names: IN t, ARRAY JOIN (SELECT ...)

    @property
    def refused(self) -> bool:
        return self.unchecked or bool(self.calls) or any(t not in ALLOWED_SOURCES for t in self.tables)


class Fuzz:
    """A bounded generator of SELECTs, tracking by construction which names are CTEs (standard scoping)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.aliases = 0
        self.defined: set[str] = set()  # CTE names defined so far, visible here or not

    def statement(self) -> tuple[str, Truth]:
        self.aliases, self.defined = 0, set()
        truth = Truth()
        return self.query(frozenset(), 0, truth), truth

    def alias(self) -> str:
        self.aliases += 1
        return f"a{self.aliases}"

    def query(self, visible: frozenset[str], depth: int, truth: Truth) -> str:
        head, inner = "", visible
        if depth < 3 and self.rng.random() < 0.5:
            ctes = []
            for name in self.rng.sample(CTE_NAMES, self.rng.randint(1, 2)):  # each CTE sees the ones before it
                if self.rng.random() < 0.15:  # a scalar WITH names a value, not a table
                    ctes.append(f"({self.select(inner, depth + 1, truth)}) AS {name}")
                    continue
                ctes.append(f"{name} AS ({self.select(inner, depth + 1, truth)})")
                inner = inner | {name}
                self.defined.add(name)
            head = "WITH " + ", ".join(ctes) + " "
        body = self.select(inner, depth, truth)
        if depth < 3 and self.rng.random() < 0.2:  # the WITH covers both branches; a WITH in the right one covers it alone
            right = self.select(inner, depth + 1, truth) if self.rng.random() < 0.5 else f"({self.query(inner, depth + 1, truth)})"
            body += f" UNION ALL {right}"
        return head + body

    def select(self, visible: frozenset[str], depth: int, truth: Truth) -> str:
        sources = [self.source(visible, depth, truth) for _ in range(self.rng.choice([1, 2]))]
        sql = f"SELECT {self.expr(visible, depth, truth)} AS c FROM {sources[0]}"
        sql += "".join(f" JOIN {s} ON 1" for s in sources[1:])
        if depth < 3 and self.rng.random() < 0.03:  # sqlglot parses the FROM in there as a column: refused
            truth.unchecked = True
            sql += f" ARRAY JOIN (SELECT groupArray(1) FROM {self.source(visible, depth + 1, truth)}) AS {self.alias()}"
        if depth < 3 and self.rng.random() < 0.3:
            sql += f" WHERE 1 IN ({self.query(visible, depth + 1, truth)})"
        return sql

    def source(self, visible: frozenset[str], depth: int, truth: Truth) -> str:
        roll = self.rng.random()
        if depth < 3 and roll < 0.2:
            return f"({self.query(visible, depth + 1, truth)}) AS {self.alias()}"
        if roll < 0.4 and visible:
            name = self.rng.choice(sorted(visible))
        elif 0.4 <= roll < 0.5:
            name = self.rng.choice(CTE_NAMES)  # a CTE where one is visible by that name, else a table
        elif roll < 0.57 and self.defined - visible:
            name = self.rng.choice(sorted(self.defined - visible))  # the name of a CTE that is not visible here
        elif roll < 0.94:
            name = self.rng.choice(ALLOWED_SOURCES)
        else:
            name = self.rng.choice(REFUSED_SOURCES)
        if name not in visible:
            truth.tables.append(name)
        return name if self.rng.random() < 0.5 else f"{name} AS {self.alias()}"

    def expr(self, visible: frozenset[str], depth: int, truth: Truth) -> str:
        roll = self.rng.random()
        if 0.03 <= roll < 0.06:
            name = self.rng.choice(REFUSED_CALLS)
            truth.calls.append(name)
            return f"{name}('x')"
        if roll < 0.03:  # ClickHouse reads a bare name after IN as a table (or a CTE): refused either way
            name = self.rng.choice(CTE_NAMES + ALLOWED_SOURCES)
            truth.unchecked = True
            return f"1 IN {name}" if self.rng.random() < 0.5 else f"1 IN ({name})"
        if depth < 3 and roll < 0.16:
            return f"(SELECT max(c) FROM ({self.query(visible, depth + 1, truth)}) AS {self.alias()})"
        if roll < 0.4:
            return self.rng.choice(WRAPPERS).format(self.expr(visible, depth + 1, truth))
        return self.rng.choice(ALLOWED_EXPRS)


def reads(node: exp.Expr, visible: frozenset[str] = frozenset()) -> Iterator[exp.Expr]:
    """Tables a parsed statement reads, by ClickHouse's rules (measured on chdb), not sqlglot's scope:
    a WITH covers its query and the subqueries inside it; each CTE sees the others of its WITH
    (forward too) but not itself; a scalar WITH names no table."""
    with_ = node.args.get("with_") if isinstance(node, exp.Query) else None
    if isinstance(with_, exp.With):
        names = {c.alias for c in with_.expressions if not c.args.get("scalar")}
        for cte in with_.expressions:
            yield from reads(cte.this, visible | (names - {cte.alias}))
        visible = visible | names
    if isinstance(node, exp.Table) and (node.args.get("db") or not isinstance(node.this, exp.Identifier) or node.name not in visible):
        yield node
    if isinstance(node, exp.From | exp.Join) and isinstance(node.this, exp.Column) and node.this.name not in visible:
        yield node.this  # sqlglot's parse of FROM t inside ARRAY JOIN (...); ClickHouse reads the table t
    for key, value in node.args.items():
        for child in value if isinstance(value, list) else [value]:
            if key != "with_" and isinstance(child, exp.Expr):
                yield from reads(child, visible)


def called(node: exp.Expr) -> set[str]:
    """Lower-cased names of the functions a parsed statement calls."""
    names = {str(f.name).lower() for f in node.find_all(exp.Anonymous, exp.AnonymousAggFunc, exp.ParameterizedAgg)}
    return names | {str(f.meta["clickhouse_name"]).lower() for f in node.find_all(exp.Func) if "clickhouse_name" in f.meta}


def test_the_oracle_reads_like_clickhouse() -> None:
    def names(sql: str) -> list[str]:
        return sorted(t.sql() for t in reads(sqlglot.parse_one(sql, dialect="clickhouse")))

    assert names("SELECT * FROM (WITH s AS (SELECT 1) SELECT * FROM s) AS a, s AS b") == ["s AS b"]
    assert names("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a") == []  # ClickHouse resolves forward
    assert names("WITH s AS (SELECT * FROM s) SELECT * FROM s") == ["s"]
    assert names("WITH (SELECT 1) AS s SELECT * FROM s") == ["s"]
    assert names("SELECT * FROM x WHERE 1 IN (WITH x AS (SELECT 1) SELECT * FROM x)") == ["x"]


def test_fuzz_never_lets_a_refused_name_through() -> None:
    fuzz = Fuzz(random.Random(20260601))
    counts = {"generated": 0, "refused": 0, "allowed": 0}
    for _ in range(300):
        statement, truth = fuzz.statement()
        counts["generated"] += 1
        try:
            checked = check_sql(statement, TABLES)
        except QueryError as err:
            counts["refused"] += 1
            assert str(err).startswith("refused: ") and "could not be checked" not in str(err), statement
            assert truth.refused, f"refused what reads only allowed tables and calls only allowed functions:\n{statement}\n{err}"
            continue
        counts["allowed"] += 1
        assert not truth.refused, f"let through {truth}:\n{statement}"
        ran = sqlglot.parse_one(checked.sql(dialect="clickhouse"), dialect="clickhouse")  # what ClickHouse is sent
        assert {t.name for t in reads(ran)} <= REAL_TABLES, statement
        assert not any(t.args.get("db") for t in reads(ran)), statement
        assert not called(ran) & {c.lower() for c in REFUSED_CALLS}, statement
    assert counts["refused"] >= 60 and counts["allowed"] >= 60, counts
    print(f"console fuzz: {counts}")


def test_mangled_statements_are_refused_never_crash() -> None:
    rng = random.Random(7)
    seeds = [c.statement for c in read_corpus()] + analyst_statements()[::10]
    tokens = ["(", ")", "[", "]", ",", ".", ";", "'", "`", '"', " ", "*", "-- ", "/*", "\\", "{x:String}", "::", "->", "?"]
    tokens += ["WITH ", "SELECT ", "FROM ", " IN ", " JOIN ", " UNION ALL ", " AS ", "rta_alert_state", "system.", "version()", "1"]
    for _ in range(300):
        text = rng.choice(seeds)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(text) + 1)
            text = text[:at] + text[at + 1 :] if rng.random() < 0.4 else text[:at] + rng.choice(tokens) + text[at:]
        try:
            checked = check_sql(text, TABLES)
        except QueryError as err:
            assert str(err).startswith("refused: "), text
            continue
        ran = sqlglot.parse_one(checked.sql(dialect="clickhouse"), dialect="clickhouse")
        assert {t.name for t in reads(ran)} <= REAL_TABLES and not called(ran) & {c.lower() for c in REFUSED_CALLS}, text
