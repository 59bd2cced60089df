"""The SQL console: one read-only SELECT over the project's tables, checked, then run with limits.

ClickHouse's read-only mode alone is not enough: measured on chdb, `readonly=2` still lets a
SELECT read `file('/etc/passwd')`, override limits with `SETTINGS`, and write a file with
`INTO OUTFILE`. So the statement is parsed (sqlglot) and passes only through allow-lists:

- one plain SELECT (or UNION of them), without SETTINGS, FORMAT or INTO;
- tables resolved by scope (sqlglot's `traverse_scope`): a CTE name stands for the CTE only in
  the query whose WITH defines it and in that query's subqueries; anywhere else the same name is a
  table and must be one of the project's. No table function (VALUES rows aside), no other
  database, no bare name after IN (ClickHouse reads it as a table), no query parameters;
- functions by their ClickHouse name (`ANALYST_FUNCTIONS`, aggregates with their combinators);
  calls written as syntax (CASE, CAST, `[...]`, AND, EXISTS, ...) by node type.

What runs (on the workspace's read-only client) is the re-rendered statement that was checked,
never the raw text: every table carries its real name and every CTE a fresh one, so ClickHouse
cannot resolve a name to something the check did not. The rendering is parsed and checked once
more, so no function or table appears in it that the check did not pass.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

import sqlglot
import sqlglot.expressions as exp
from sqlglot.errors import ErrorLevel
from sqlglot.optimizer.scope import Scope, traverse_scope

from rta.compiler.ddl import ALERT_HISTORY_TABLE, STATS_TABLE
from rta.compiler.plan import Plan
from rta.errors import QueryError, did_you_mean

MAX_SQL_CHARS = 100_000


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# The ClickHouse functions analysts may call, by family (names compare case-insensitively).
# https://clickhouse.com/docs/sql-reference/functions and .../aggregate-functions/reference
ANALYST_FUNCTIONS: Mapping[str, frozenset[str]] = {
    "aggregate": _names(
        """count sum avg min max any anyLast anyHeavy any_value first_value last_value argMin argMax
        uniq uniqExact uniqCombined uniqCombined64 uniqHLL12 uniqTheta uniqUpTo countDistinct
        quantile quantiles quantileExact quantilesExact quantileExactWeighted quantilesExactWeighted
        quantileExactLow quantileExactHigh quantileTDigest quantilesTDigest quantileTDigestWeighted
        quantilesTDigestWeighted quantileTiming quantilesTiming quantileTimingWeighted quantileDeterministic
        quantilesDeterministic quantileBFloat16 quantilesBFloat16 quantileDD quantilesDD quantileGK quantilesGK
        median medianExact medianExactWeighted medianTDigest medianTiming medianDeterministic medianBFloat16
        stddevPop stddevSamp stddev_pop stddev_samp stddev varPop varSamp var_pop var_samp variance
        covarPop covarSamp covar_pop covar_samp corr groupArray groupUniqArray groupArrayMovingSum
        groupArrayMovingAvg groupArraySorted groupConcat groupBitAnd groupBitOr groupBitXor groupBitmap
        topK topKWeighted sumMap minMap maxMap avgWeighted sumWithOverflow sumKahan sumCount
        simpleLinearRegression entropy skewPop skewSamp kurtPop kurtSamp histogram retention windowFunnel
        sequenceMatch sequenceCount deltaSum boundingRatio
        row_number rank dense_rank percent_rank cume_dist ntile lag lead lagInFrame leadInFrame nth_value"""
    ),
    # Rollup columns hold aggregate states: -Merge (a combinator) reads them, these finish them.
    "sketch": _names("finalizeAggregation initializeAggregation runningAccumulate arrayReduce"),
    "math": _names(
        """abs sign round roundBankers roundDown roundToExp2 floor ceil ceiling trunc truncate sqrt cbrt
        exp exp2 exp10 log ln log2 log10 log1p pow power pi e sin cos tan asin acos atan atan2 sinh cosh
        tanh hypot degrees radians intDiv intDivOrZero modulo moduloOrZero positiveModulo pmod plus minus
        multiply divide negate gcd lcm greatest least isNaN isFinite isInfinite ifNotFinite erf erfc
        factorial width_bucket bitAnd bitOr bitXor bitNot bitShiftLeft bitShiftRight bitCount"""
    ),
    "string": _names(
        """length lengthUTF8 char_length character_length empty notEmpty lower upper lcase ucase lowerUTF8
        upperUTF8 concat concatWithSeparator concat_ws substring substr mid substringUTF8 left right
        leftUTF8 rightUTF8 leftPad rightPad lpad rpad leftPadUTF8 rightPadUTF8 trim trimLeft trimRight
        trimBoth ltrim rtrim replace replaceAll replaceOne replaceRegexpAll replaceRegexpOne regexp_replace
        position positionCaseInsensitive positionUTF8 locate instr startsWith endsWith like notLike ilike
        notILike match extract extractAll extractAllGroups regexpExtract splitByChar splitByString
        splitByRegexp splitByWhitespace arrayStringConcat reverse reverseUTF8 repeat space format
        base64Encode base64Decode tryBase64Decode hex unhex countSubstrings countMatches
        formatReadableSize formatReadableDecimalSize formatReadableQuantity formatReadableTimeDelta bar"""
    ),
    "url": _names(
        """domain domainWithoutWWW topLevelDomain protocol path pathFull queryString fragment
        extractURLParameter extractURLParameters cutQueryString cutWWW cutURLParameter
        decodeURLComponent encodeURLComponent"""
    ),
    "json": _names(
        """JSONExtract JSONExtractString JSONExtractInt JSONExtractUInt JSONExtractFloat JSONExtractBool
        JSONExtractRaw JSONExtractKeys JSONExtractArrayRaw JSONHas JSONLength JSONType
        simpleJSONExtractString simpleJSONExtractInt simpleJSONExtractFloat simpleJSONHas
        visitParamExtractString visitParamExtractInt visitParamHas"""
    ),
    "hash": _names(
        """cityHash64 sipHash64 sipHash128 xxHash32 xxHash64 xxh3 murmurHash3_32 murmurHash3_64 farmHash64
        halfMD5 MD5 SHA1 SHA224 SHA256 SHA512 crc32 IPv4NumToString IPv4StringToNum IPv6NumToString
        IPv6StringToNum toIPv4 toIPv6 isIPv4String isIPv6String isIPAddressInRange IPv4CIDRToRange"""
    ),
    "datetime": _names(
        """now now64 today yesterday current_date current_timestamp toYear toQuarter toMonth toWeek toISOWeek
        toISOYear toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute toSecond toMillisecond toStartOfYear
        toStartOfISOYear toStartOfQuarter toStartOfMonth toStartOfWeek toMonday toStartOfDay toStartOfHour
        toStartOfMinute toStartOfSecond toStartOfFiveMinutes toStartOfFiveMinute toStartOfTenMinutes
        toStartOfFifteenMinutes toStartOfInterval toLastDayOfMonth toLastDayOfWeek toTime toYYYYMM
        toYYYYMMDD toYYYYMMDDhhmmss toRelativeYearNum toRelativeQuarterNum toRelativeMonthNum
        toRelativeWeekNum toRelativeDayNum toRelativeHourNum toRelativeMinuteNum toRelativeSecondNum
        toTimeZone toTimezone timeSlot timeSlots dateDiff date_diff timestampDiff timestamp_diff age dateAdd
        date_add dateSub date_sub timestamp_add timestamp_sub addYears addQuarters addMonths addWeeks addDays
        addHours addMinutes addSeconds addMilliseconds subtractYears subtractQuarters subtractMonths
        subtractWeeks subtractDays subtractHours subtractMinutes subtractSeconds subtractMilliseconds
        dateTrunc date_trunc formatDateTime formatDateTimeInJodaSyntax dateName monthName makeDate makeDate32
        makeDateTime makeDateTime64 toUnixTimestamp toUnixTimestamp64Milli toUnixTimestamp64Micro
        toUnixTimestamp64Nano fromUnixTimestamp from_unixtime fromUnixTimestamp64Milli
        fromUnixTimestamp64Micro fromUnixTimestamp64Nano parseDateTimeBestEffort parseDateTime64BestEffort
        parseDateTime toIntervalSecond toIntervalMinute toIntervalHour toIntervalDay toIntervalWeek
        toIntervalMonth toIntervalQuarter toIntervalYear"""
    ),
    "conditional": _names(
        """if multiIf coalesce ifNull nullIf isNull isNotNull assumeNotNull toNullable isZeroOrNull
        and or not xor equals notEquals less greater lessOrEquals greaterOrEquals"""
    ),
    # Each also with -OrZero, -OrNull or -OrDefault (CONVERSION_SUFFIXES).
    "conversion": _names(
        """toInt8 toInt16 toInt32 toInt64 toInt128 toInt256 toUInt8 toUInt16 toUInt32 toUInt64 toUInt128
        toUInt256 toFloat32 toFloat64 toDecimal32 toDecimal64 toDecimal128 toDecimal256 toString
        toFixedString toDate toDate32 toDateTime toDateTime64 toBool toUUID toLowCardinality
        toDecimalString toTypeName cast accurateCast parseDateTimeBestEffort parseDateTime64BestEffort
        parseDateTime"""
    ),
    "array": _names(
        """array range has hasAll hasAny hasSubstr indexOf countEqual arrayJoin arrayMap arrayFilter
        arrayCount arraySum arrayAvg arrayMin arrayMax arrayProduct arraySort arrayReverseSort arrayDistinct
        arrayUniq arrayConcat arraySlice arrayElement arrayEnumerate arrayEnumerateUniq arrayZip arrayFlatten
        arrayCumSum arrayDifference arrayFirst arrayFirstIndex arrayLast arrayExists arrayAll arrayPushBack
        arrayPushFront arrayPopBack arrayPopFront arrayResize arrayReverse arrayCompact arrayIntersect
        arraySplit arrayFold emptyArrayString emptyArrayUInt64 tuple tupleElement untuple map mapKeys
        mapValues mapContains mapFromArrays"""
    ),
}
# https://clickhouse.com/docs/sql-reference/aggregate-functions/combinators: `uniqCombined64Merge`,
# `quantileTDigestMergeIf`, `sumIfOrNull` ... are aggregates too.
AGGREGATE_COMBINATORS = (
    "If", "Array", "Map", "State", "SimpleState", "Merge", "MergeState", "ForEach", "Distinct", "OrDefault", "OrNull",
    "Resample", "ArgMin", "ArgMax",
)  # fmt: skip
CONVERSION_SUFFIXES = ("OrZero", "OrNull", "OrDefault")
# Calls written as syntax carry no function name: CASE, CAST and `::`, `[..]`, tuples, EXTRACT,
# AND/OR/XOR, EXISTS, COLUMNS('regex'), `quantile(0.5)(x)`, `count(*)`, CURRENT_DATE.
SYNTAX_FUNCTIONS: tuple[type[exp.Func], ...] = (
    exp.Case, exp.Cast, exp.TryCast, exp.Array, exp.Struct, exp.Extract, exp.And, exp.Or, exp.Xor, exp.Exists,
    exp.Columns, exp.Quantile, exp.Count, exp.CurrentDate, exp.If,
)  # fmt: skip
# Names refused with a reason of their own; anything else off the list is refused with the list's hint.
OUTSIDE_PREFIXES = (
    "file", "url", "remote", "s3", "hdfs", "azure", "gcs", "mysql", "postgres", "jdbc", "odbc", "mongo", "redis",
    "sqlite", "dict", "joinget", "executable", "input", "cluster", "iceberg", "deltalake", "hudi", "kafka",
)  # fmt: skip
SERVER_PROBES = frozenset(
    n.lower()
    for n in """getServerSetting getSetting getSettingOrDefault hasColumnInTable currentDatabase database
    currentSchemas currentUser user currentRoles enabledRoles defaultRoles currentProfiles enabledProfiles
    defaultProfiles version revision buildId hostName fqdn uptime serverUUID getMacro tcpPort shardNum
    shardCount timezone serverTimezone queryID currentQueryID initialQueryID initialQueryStartTime
    getOSKernelVersion zookeeperSessionUptime filesystemAvailable filesystemCapacity filesystemUnreserved
    displayName getClientHTTPHeader transactionID connectionId""".split()
)
_SPELLING = {n.lower(): n for family in ANALYST_FUNCTIONS.values() for n in family}
_AGGREGATES = frozenset(n.lower() for n in ANALYST_FUNCTIONS["aggregate"])
_CONVERSIONS = frozenset(n.lower() for n in ANALYST_FUNCTIONS["conversion"])
_COMBINATORS = tuple(c.lower() for c in AGGREGATE_COMBINATORS)
_NAMED = (exp.Anonymous, exp.AnonymousAggFunc, exp.ParameterizedAgg)
_WRITES = (exp.Command, exp.Insert, exp.Create, exp.Drop, exp.Alter, exp.Delete, exp.Update, exp.Set)
_NOT_VISIBLE = "a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it"


@dataclass(frozen=True, slots=True)
class ConsoleLimits:
    """Per-statement limits, enforced by ClickHouse on the read-only client."""

    max_seconds: int = 10
    max_rows: int = 100_000
    max_memory_bytes: int = 2_000_000_000

    def settings(self) -> dict[str, object]:
        """Settings of the read-only client (readonly=2 keeps ClickHouse's own writes possible, ours not)."""
        return {
            "readonly": 2,
            "max_execution_time": self.max_seconds,
            "max_result_rows": self.max_rows,
            "result_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
        }


def table_aliases(plan: Plan) -> dict[str, str]:
    """Names analysts may use: stream names for raw events, ``<rollup>_<grain>``, and the real names."""
    names: dict[str, str] = {STATS_TABLE: STATS_TABLE, "ingest_stats": STATS_TABLE}
    for s in plan.streams:
        if s.raw_table:
            names[s.name] = s.raw_table
            names[s.raw_table] = s.raw_table
    for r in plan.rollups:
        for t in r.tables:
            names[f"{r.name}_{t.grain}"] = t.table
            names[t.table] = t.table
    if plan.definitions.alerts:
        names |= {"alert_history": ALERT_HISTORY_TABLE, ALERT_HISTORY_TABLE: ALERT_HISTORY_TABLE}
    return names


def _refuse(reason: str, hint: str = "") -> QueryError:
    return QueryError(f"refused: {reason}" + (f"; {hint}" if hint else ""))


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def check_sql(text: str, tables: Mapping[str, str]) -> exp.Expr:
    """The checked statement with tables and CTEs renamed, or a QueryError that says why not."""
    if not isinstance(text, str) or not text.strip():
        raise _refuse("empty statement", "write one SELECT")
    if len(text) > MAX_SQL_CHARS:
        raise _refuse(f"the statement has {len(text):,} characters, over the limit of {MAX_SQL_CHARS:,}")
    try:
        statement = _parse(text)
        for node in statement.walk():  # comments are not re-rendered: nothing ClickHouse could parse otherwise
            node.pop_comments()
        _check(statement, tables)
        rendered = statement.sql(dialect="clickhouse", unsupported_level=ErrorLevel.RAISE)
        _check(_parse(rendered), {**tables, **{real: real for real in tables.values()}})  # what runs passes too
    except QueryError:
        raise
    except sqlglot.errors.UnsupportedError as err:  # rendering would drop part of it
        raise _refuse(f"the console cannot pass it on unchanged: {_first_line(err)}", "write it another way") from None
    except RecursionError:  # sqlglot parses and renders recursively
        raise _refuse("the statement nests too deeply to parse", "flatten it or split it in steps") from None
    except Exception as err:  # a statement the checker cannot follow is refused, never run (nor a 500)
        raise _refuse(f"the statement could not be checked ({type(err).__name__}: {_first_line(err)})", "simplify it") from None
    return statement


def _parse(text: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(text, dialect="clickhouse") if s is not None]
    except (sqlglot.errors.SqlglotError, ValueError, IndexError, TypeError, AttributeError) as err:
        # sqlglot also raises plain IndexError/ValueError on some malformed calls, e.g. `map(x)`.
        raise _refuse(f"cannot parse the statement: {_first_line(err)}", "only plain SELECT statements are accepted") from None
    if len(statements) != 1:
        raise _refuse(f"{len(statements)} statements given", "send one SELECT at a time")
    (statement,) = statements
    if not isinstance(statement, exp.Select | exp.SetOperation):
        raise _refuse(f"{type(statement).__name__.upper()} statements are not allowed", "the console is read-only: SELECT only")
    return statement


def _check(statement: exp.Expr, tables: Mapping[str, str]) -> None:
    for node in statement.walk():
        if isinstance(node, exp.Select | exp.SetOperation):
            for clause in ("settings", "format", "into"):
                if node.args.get(clause):
                    raise _refuse(f"a {clause.upper()} clause", "limits and output format are fixed by rta")
        if isinstance(node, _WRITES):
            raise _refuse(f"{type(node).__name__.upper()} inside the statement", "SELECT only")
        if isinstance(node, exp.Placeholder):
            raise _refuse(f"a query parameter {node.sql(dialect='clickhouse')!r}", "the console takes no parameters: write the value")
        if isinstance(node, exp.From) or (isinstance(node, exp.Join) and node.text("kind").upper() != "ARRAY"):
            _check_source(node.this)
    _resolve_tables(statement, tables)
    for node in statement.walk():
        if isinstance(node, exp.In):
            _check_in(node)
        elif isinstance(node, exp.Apply):  # `* APPLY(f)` calls f on every column; `APPLY(x -> ...)` is checked inside
            if isinstance(node.expression, exp.Var | exp.Identifier | exp.Column):
                _check_name(node.expression.name)
        elif isinstance(node, exp.Func):
            _check_function(node)


def _resolve_tables(statement: exp.Expr, tables: Mapping[str, str]) -> None:
    """Rename each table to its real name and each CTE (and its uses) to a fresh one, by scope."""
    try:
        scopes = traverse_scope(statement)
    except Exception as err:  # sqlglot's OptimizeError, e.g. for one alias used twice in a FROM
        raise _refuse(f"cannot resolve the statement's tables: {_first_line(err)}", "give each source in a FROM its own alias") from None
    fresh = _fresh_cte_names(statement)
    ctes = {c.alias: bool(c.args.get("scalar")) for c in statement.find_all(exp.CTE)}
    renames: dict[int, tuple[exp.Table, str]] = {}
    for scope in scopes:
        for table in scope.tables:
            cte = _visible_cte(scope, table)
            renames[id(table)] = (table, fresh[id(cte)] if cte is not None else _real_table(table, tables, ctes))
    for node in statement.find_all(exp.Table):
        if id(node) not in renames:  # fail closed: a table no scope accounts for, e.g. inside `(a JOIN b)`
            raise _refuse(f"cannot tell which table {node.sql(dialect='clickhouse')[:60]!r} reads", "write joins without parentheses")
    for table, name in renames.values():
        _rename(table, name)
    for cte in statement.find_all(exp.CTE):
        if id(cte) in fresh:
            cte.args["alias"].set("this", exp.to_identifier(fresh[id(cte)]))


def _check_source(source: exp.Expr) -> None:
    # Fail closed: sqlglot parses a FROM inside ARRAY JOIN (SELECT ... FROM t) as a column `t`, which
    # no scope counts as a table; a FROM or JOIN reads a table, a subquery or VALUES, nothing else.
    inner = source.this if isinstance(source, exp.Final) else source
    if not isinstance(inner, exp.Table | exp.Subquery | exp.Values):
        join, array_join = source.find_ancestor(exp.Join), False
        while join is not None and not array_join:
            array_join, join = join.text("kind").upper() == "ARRAY", join.find_ancestor(exp.Join)
        hint = "compute the array in a CTE and ARRAY JOIN its column" if array_join else "write FROM table or FROM (SELECT ...)"
        raise _refuse(f"cannot tell which table {source.sql(dialect='clickhouse')[:60]!r} reads", hint)


def _fresh_cte_names(statement: exp.Expr) -> dict[int, str]:
    # Fresh names start with an underscore, which no table of the project does (they start with rta_).
    fresh: dict[int, str] = {}
    for with_ in statement.find_all(exp.With):
        seen: set[str] = set()
        for cte in with_.expressions:
            if cte.alias in seen:
                raise _refuse(f"the CTE name {cte.alias!r} is defined twice in one WITH", "give each CTE its own name")
            seen.add(cte.alias)
            if not cte.args.get("scalar"):
                fresh[id(cte)] = f"_cte{len(fresh) + 1}_{cte.alias}"
    return fresh


def _visible_cte(scope: Scope, table: exp.Table) -> exp.CTE | None:
    """The CTE this table reference names, as sqlglot resolves it (innermost visible WITH)."""
    if table.args.get("db") or table.args.get("catalog") or not isinstance(table.this, exp.Identifier):
        return None
    source = scope.cte_sources.get(table.name)
    cte = source.expression.find_ancestor(exp.CTE) if isinstance(source, Scope) else None
    # Measured on chdb: `WITH (SELECT 1) AS t SELECT * FROM t` reads the table t, so a scalar
    # WITH never names a table (sqlglot's scope would take it for one).
    if cte is None or cte.args.get("scalar") or cte.alias != table.name:
        return None
    return cte


def _real_table(table: exp.Table, tables: Mapping[str, str], ctes: Mapping[str, bool]) -> str:
    if isinstance(table.this, exp.Func):
        raise _refuse(f"table function {table.this.sql(dialect='clickhouse')[:60]!r}", "query the project's tables by name")
    if not isinstance(table.this, exp.Identifier):
        raise _refuse(f"table {table.this.sql(dialect='clickhouse')[:60]!r} is not a name", "query the project's tables by name")
    if table.args.get("db") is not None or table.args.get("catalog") is not None:
        raise _refuse(f"table {table.sql(dialect='clickhouse')!r} is outside the project", "use the project's tables")
    name = table.name
    if name not in tables:
        if name not in ctes:
            hint = did_you_mean(name, sorted(tables))
        elif ctes[name]:
            hint = f"WITH (...) AS {name} names a value, not a table; write WITH {name} AS (SELECT ...)"
        else:
            hint = f"{name!r} names a CTE that is not visible here: {_NOT_VISIBLE}"
        raise _refuse(f"unknown table {name!r}", hint)
    return tables[name]


def _rename(table: exp.Table, name: str) -> None:
    if table.name == name:
        return
    if not table.alias:  # keeps `events.country` and `t.n` pointing at the renamed source
        table.set("alias", exp.TableAlias(this=table.this.copy()))
    table.set("this", exp.to_identifier(name))


def _check_in(node: exp.In) -> None:
    # Measured on chdb: `x IN t` and `x IN (t)` read the table (or CTE) t, so a bare name after IN
    # would be a table read the scope check never sees.
    rhs = node.args.get("field") or (node.expressions[0] if len(node.expressions) == 1 else None)
    while isinstance(rhs, exp.Paren):
        rhs = rhs.this
    if isinstance(rhs, exp.Column | exp.Dot | exp.Identifier | exp.Table):
        raise _refuse(
            f"IN {rhs.sql(dialect='clickhouse')[:60]!r}: ClickHouse reads a bare name after IN as a table",
            "write IN (SELECT column FROM table), or has(array, value) for an array",
        )


def _check_function(node: exp.Func) -> None:
    name = node.name if isinstance(node, _NAMED) else node.meta.get("clickhouse_name")
    if name is None:
        if isinstance(node, SYNTAX_FUNCTIONS):
            return
        name = node.sql(dialect="clickhouse").split("(")[0].strip()[:60] or type(node).__name__
    _check_name(name)


def _check_name(name: str) -> None:
    lowered = name.lower()
    if lowered in _SPELLING or _is_aggregate(lowered) or _is_conversion(lowered):
        return
    if lowered.startswith(OUTSIDE_PREFIXES):
        raise _refuse(f"function {name!r} reaches outside the database", "the console reads the project's tables only")
    if lowered in SERVER_PROBES:
        raise _refuse(f"function {name!r} reads the server's settings or metadata", "the console answers questions about the data only")
    close = difflib.get_close_matches(lowered, list(_SPELLING), n=1)
    prefix = f"did you mean {_SPELLING[close[0]]!r}? " if close else ""
    raise _refuse(
        f"function {name!r} is not on the console's list of analyst functions",
        prefix + "it has aggregate (with -If, -Merge, -State ... combinators), math, string, URL, JSON, hash, "
        "date/time, conditional, conversion and array functions",
    )


def _is_aggregate(name: str) -> bool:
    """An aggregate, or one with combinators: ``uniqcombined64merge``, ``sumifornull``."""
    if name in _AGGREGATES:
        return True
    return len(name) < 80 and any(name.endswith(c) and _is_aggregate(name[: -len(c)]) for c in _COMBINATORS if len(name) > len(c))


def _is_conversion(name: str) -> bool:
    """A conversion with its fallback: ``toint64orzero``, ``todatetimeornull``."""
    return any(name.endswith(s.lower()) and name[: -len(s)] in _CONVERSIONS for s in CONVERSION_SUFFIXES)
