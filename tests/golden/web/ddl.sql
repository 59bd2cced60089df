CREATE TABLE IF NOT EXISTS rta_ingest_stats (
  minute DateTime('UTC'),
  stream LowCardinality(String),
  outcome LowCardinality(String),
  events SimpleAggregateFunction(sum, UInt64),
  last_seen SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
  newest_event SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE=AggregatingMergeTree
ORDER BY (stream, outcome, minute)
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS rta_events_raw_c5d8e2f0 (
  timestamp DateTime64(3, 'UTC'),
  insert_id String,
  user_id String,
  event LowCardinality(String),
  path LowCardinality(String),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  source LowCardinality(String),
  medium LowCardinality(String),
  load_ms Nullable(Float64),
  _p String EPHEMERAL,
  _n String EPHEMERAL,
  props Map(LowCardinality(String), String) DEFAULT JSONExtract(_p, 'Map(LowCardinality(String), String)'),
  props_num Map(LowCardinality(String), Float64) DEFAULT JSONExtract(_n, 'Map(LowCardinality(String), Float64)')
)
ENGINE=MergeTree
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (timestamp)
TTL toDateTime(timestamp) + INTERVAL 30 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS rta_events_sessions_ed78aeaf (
  key String,
  person String,
  sid String,
  start DateTime64(3, 'UTC'),
  start_id String,
  end DateTime64(3, 'UTC'),
  end_id String,
  events UInt32,
  pages UInt32,
  interactions UInt32,
  entry Nullable(String),
  entry_ts Nullable(DateTime64(3, 'UTC')),
  entry_id Nullable(String),
  exit Nullable(String),
  exit_ts Nullable(DateTime64(3, 'UTC')),
  exit_id Nullable(String),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  source LowCardinality(String),
  medium LowCardinality(String),
  sign Int8
)
ENGINE=MergeTree
PARTITION BY toYYYYMM(start)
ORDER BY (start, key)
TTL toDateTime(start) + INTERVAL 400 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS rta_events_sessions_ed78aeaf_1m (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  source LowCardinality(String),
  medium LowCardinality(String),
  visits_n Int64,
  bounces_n Int64,
  duration_ms Int64,
  pageviews_n Int64
)
ENGINE=SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, country, device, campaign, source, medium)
TTL bucket + INTERVAL 400 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_events_sessions_ed78aeaf_1m_mv
TO rta_events_sessions_ed78aeaf_1m AS
SELECT
  toStartOfMinute(start) AS bucket,
  country,
  device,
  campaign,
  source,
  medium,
  sum(sign) AS visits_n,
  sum(
    sign * (
      pages <= 1 AND interactions = 0 AND DATE_DIFF(MILLISECOND, start, "end") < 10000
    )
  ) AS bounces_n,
  sum(sign * DATE_DIFF(MILLISECOND, start, "end")) AS duration_ms,
  sum(sign * pages) AS pageviews_n
FROM rta_events_sessions_ed78aeaf
GROUP BY
  bucket,
  country,
  device,
  campaign,
  source,
  medium;

CREATE TABLE IF NOT EXISTS rta_site_in_b79e059c (
  minute DateTime('UTC'),
  pageviews__n UInt64,
  visitors__uniq Array(String)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_site_1m_b79e059c (
  bucket DateTime('UTC'),
  pageviews__n SimpleAggregateFunction(sum, UInt64),
  visitors__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 7 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_site_1m_mv_b79e059c
TO rta_site_1m_b79e059c AS
SELECT
  minute AS bucket,
  sum(pageviews__n) AS pageviews__n,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_site_in_b79e059c
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_site_1h_b79e059c (
  bucket DateTime('UTC'),
  pageviews__n SimpleAggregateFunction(sum, UInt64),
  visitors__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_site_1h_mv_b79e059c
TO rta_site_1h_b79e059c AS
SELECT
  toStartOfHour(minute) AS bucket,
  sum(pageviews__n) AS pageviews__n,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_site_in_b79e059c
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_site_1d_b79e059c (
  bucket DateTime('UTC'),
  pageviews__n SimpleAggregateFunction(sum, UInt64),
  visitors__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_site_1d_mv_b79e059c
TO rta_site_1d_b79e059c AS
SELECT
  toStartOfDay(minute) AS bucket,
  sum(pageviews__n) AS pageviews__n,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_site_in_b79e059c
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_site_by_source_in_9747341c (
  minute DateTime('UTC'),
  source String,
  medium String,
  country String,
  device String,
  pageviews__n UInt64,
  visitors__uniq Array(String)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_site_by_source_1m_9747341c (
  bucket DateTime('UTC'),
  source LowCardinality(String),
  medium LowCardinality(String),
  country LowCardinality(String),
  device LowCardinality(String),
  pageviews__n SimpleAggregateFunction(sum, UInt64),
  visitors__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket, source, medium, country, device)
TTL bucket + INTERVAL 7 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_site_by_source_1m_mv_9747341c
TO rta_site_by_source_1m_9747341c AS
SELECT
  minute AS bucket,
  source,
  medium,
  country,
  device,
  sum(pageviews__n) AS pageviews__n,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_site_by_source_in_9747341c
GROUP BY
  bucket,
  source,
  medium,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_site_by_source_1h_9747341c (
  bucket DateTime('UTC'),
  source LowCardinality(String),
  medium LowCardinality(String),
  country LowCardinality(String),
  device LowCardinality(String),
  pageviews__n SimpleAggregateFunction(sum, UInt64),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_source (
    SELECT
      bucket,
      source,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      source
  ),
  PROJECTION by_medium (
    SELECT
      bucket,
      medium,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      medium
  ),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      device
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, source, medium, country, device)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_site_by_source_1h_mv_9747341c
TO rta_site_by_source_1h_9747341c AS
SELECT
  toStartOfHour(minute) AS bucket,
  source,
  medium,
  country,
  device,
  sum(pageviews__n) AS pageviews__n,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_site_by_source_in_9747341c
GROUP BY
  bucket,
  source,
  medium,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_site_by_source_1d_9747341c (
  bucket DateTime('UTC'),
  source LowCardinality(String),
  medium LowCardinality(String),
  country LowCardinality(String),
  device LowCardinality(String),
  pageviews__n SimpleAggregateFunction(sum, UInt64),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_source (
    SELECT
      bucket,
      source,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      source
  ),
  PROJECTION by_medium (
    SELECT
      bucket,
      medium,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      medium
  ),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      device
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket, source, medium, country, device)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_site_by_source_1d_mv_9747341c
TO rta_site_by_source_1d_9747341c AS
SELECT
  toStartOfDay(minute) AS bucket,
  source,
  medium,
  country,
  device,
  sum(pageviews__n) AS pageviews__n,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_site_by_source_in_9747341c
GROUP BY
  bucket,
  source,
  medium,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_pages_in_1103a810 (
  minute DateTime('UTC'),
  path String,
  source String,
  country String,
  device String,
  pageviews__n UInt64,
  visitors__uniq Array(String)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_pages_1h_1103a810 (
  bucket DateTime('UTC'),
  path LowCardinality(String),
  source LowCardinality(String),
  country LowCardinality(String),
  device LowCardinality(String),
  pageviews__n SimpleAggregateFunction(sum, UInt64),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_path (
    SELECT
      bucket,
      path,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      path
  ),
  PROJECTION by_source (
    SELECT
      bucket,
      source,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      source
  ),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      device
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, path, source, country, device)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_pages_1h_mv_1103a810
TO rta_pages_1h_1103a810 AS
SELECT
  toStartOfHour(minute) AS bucket,
  path,
  source,
  country,
  device,
  sum(pageviews__n) AS pageviews__n,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_pages_in_1103a810
GROUP BY
  bucket,
  path,
  source,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_pages_1d_1103a810 (
  bucket DateTime('UTC'),
  path LowCardinality(String),
  source LowCardinality(String),
  country LowCardinality(String),
  device LowCardinality(String),
  pageviews__n SimpleAggregateFunction(sum, UInt64),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_path (
    SELECT
      bucket,
      path,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      path
  ),
  PROJECTION by_source (
    SELECT
      bucket,
      source,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      source
  ),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      SUM(pageviews__n),
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      device
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket, path, source, country, device)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_pages_1d_mv_1103a810
TO rta_pages_1d_1103a810 AS
SELECT
  toStartOfDay(minute) AS bucket,
  path,
  source,
  country,
  device,
  sum(pageviews__n) AS pageviews__n,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_pages_in_1103a810
GROUP BY
  bucket,
  path,
  source,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_person_traits (
  person String,
  key LowCardinality(String),
  value String,
  updated DateTime64(3, 'UTC')
)
ENGINE=ReplacingMergeTree(updated)
ORDER BY (person, key)
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS rta_person_aliases (
  anonymous String,
  person String,
  at DateTime64(3, 'UTC')
)
ENGINE=ReplacingMergeTree(at)
ORDER BY (anonymous)
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS rta_erasures (
  person_hash String,
  id_hashes Array(String),
  at DateTime64(3, 'UTC'),
  requested_by String,
  rows UInt64
)
ENGINE=MergeTree
ORDER BY (at)
SETTINGS
  non_replicated_deduplication_window = 10000;
