"""Which functions the SQL console lets analysts call: ClickHouse's names by family, aggregates
with their combinators, calls written as syntax; everything else is refused with a reason.

Read by ``rta/query/console.py``, which checks every function node of a statement here.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

import sqlglot.expressions as exp

from rta.errors import QueryError


def refusal(reason: str, hint: str = "") -> QueryError:
    """The console's error for a statement it will not run."""
    return QueryError(f"refused: {reason}" + (f"; {hint}" if hint else ""))


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


def check_function(node: exp.Func) -> None:
    name = node.name if isinstance(node, _NAMED) else node.meta.get("clickhouse_name")
    if name is None:
        if isinstance(node, SYNTAX_FUNCTIONS):
            return
        name = node.sql(dialect="clickhouse").split("(")[0].strip()[:60] or type(node).__name__
    check_name(name)


def check_name(name: str) -> None:
    lowered = name.lower()
    if lowered in _SPELLING or _is_aggregate(lowered) or _is_conversion(lowered):
        return
    if lowered.startswith(OUTSIDE_PREFIXES):
        raise refusal(f"function {name!r} reaches outside the database", "the console reads the project's tables only")
    if lowered in SERVER_PROBES:
        raise refusal(f"function {name!r} reads the server's settings or metadata", "the console answers questions about the data only")
    close = difflib.get_close_matches(lowered, list(_SPELLING), n=1)
    prefix = f"did you mean {_SPELLING[close[0]]!r}? " if close else ""
    raise refusal(
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
