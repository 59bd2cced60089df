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

CREATE TABLE IF NOT EXISTS rta_content_in_50573d05 (
  minute DateTime('UTC'),
  path String,
  referrer String,
  campaign String,
  views__n UInt64,
  signups__n UInt64,
  time_on_page_ms__sum Float64,
  time_on_page_ms__n UInt64,
  p90_duration_ms__digest Array(Float64)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_content_1h_50573d05 (
  bucket DateTime('UTC'),
  path LowCardinality(String),
  referrer LowCardinality(String),
  campaign LowCardinality(String),
  views__n SimpleAggregateFunction(sum, UInt64),
  signups__n SimpleAggregateFunction(sum, UInt64),
  time_on_page_ms__sum SimpleAggregateFunction(sum, Float64),
  time_on_page_ms__n SimpleAggregateFunction(sum, UInt64),
  p90_duration_ms__digest AggregateFunction(quantileTDigest(0.9), Float64),
  PROJECTION by_path (
    SELECT
      bucket,
      path,
      SUM(views__n),
      SUM(signups__n),
      SUM(time_on_page_ms__sum),
      SUM(time_on_page_ms__n),
      quantileTDigestMerge(0.9)(p90_duration_ms__digest)
    GROUP BY
      bucket,
      path
  ),
  PROJECTION by_referrer (
    SELECT
      bucket,
      referrer,
      SUM(views__n),
      SUM(signups__n),
      SUM(time_on_page_ms__sum),
      SUM(time_on_page_ms__n),
      quantileTDigestMerge(0.9)(p90_duration_ms__digest)
    GROUP BY
      bucket,
      referrer
  ),
  PROJECTION by_campaign (
    SELECT
      bucket,
      campaign,
      SUM(views__n),
      SUM(signups__n),
      SUM(time_on_page_ms__sum),
      SUM(time_on_page_ms__n),
      quantileTDigestMerge(0.9)(p90_duration_ms__digest)
    GROUP BY
      bucket,
      campaign
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, path, referrer, campaign)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_content_1h_mv_50573d05
TO rta_content_1h_50573d05 AS
SELECT
  toStartOfHour(minute) AS bucket,
  path,
  referrer,
  campaign,
  sum(views__n) AS views__n,
  sum(signups__n) AS signups__n,
  sum(time_on_page_ms__sum) AS time_on_page_ms__sum,
  sum(time_on_page_ms__n) AS time_on_page_ms__n,
  quantileTDigestArrayState(0.9)(p90_duration_ms__digest) AS p90_duration_ms__digest
FROM rta_content_in_50573d05
GROUP BY
  bucket,
  path,
  referrer,
  campaign;

CREATE TABLE IF NOT EXISTS rta_content_1d_50573d05 (
  bucket DateTime('UTC'),
  path LowCardinality(String),
  referrer LowCardinality(String),
  campaign LowCardinality(String),
  views__n SimpleAggregateFunction(sum, UInt64),
  signups__n SimpleAggregateFunction(sum, UInt64),
  time_on_page_ms__sum SimpleAggregateFunction(sum, Float64),
  time_on_page_ms__n SimpleAggregateFunction(sum, UInt64),
  p90_duration_ms__digest AggregateFunction(quantileTDigest(0.9), Float64),
  PROJECTION by_path (
    SELECT
      bucket,
      path,
      SUM(views__n),
      SUM(signups__n),
      SUM(time_on_page_ms__sum),
      SUM(time_on_page_ms__n),
      quantileTDigestMerge(0.9)(p90_duration_ms__digest)
    GROUP BY
      bucket,
      path
  ),
  PROJECTION by_referrer (
    SELECT
      bucket,
      referrer,
      SUM(views__n),
      SUM(signups__n),
      SUM(time_on_page_ms__sum),
      SUM(time_on_page_ms__n),
      quantileTDigestMerge(0.9)(p90_duration_ms__digest)
    GROUP BY
      bucket,
      referrer
  ),
  PROJECTION by_campaign (
    SELECT
      bucket,
      campaign,
      SUM(views__n),
      SUM(signups__n),
      SUM(time_on_page_ms__sum),
      SUM(time_on_page_ms__n),
      quantileTDigestMerge(0.9)(p90_duration_ms__digest)
    GROUP BY
      bucket,
      campaign
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket, path, referrer, campaign)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_content_1d_mv_50573d05
TO rta_content_1d_50573d05 AS
SELECT
  toStartOfDay(minute) AS bucket,
  path,
  referrer,
  campaign,
  sum(views__n) AS views__n,
  sum(signups__n) AS signups__n,
  sum(time_on_page_ms__sum) AS time_on_page_ms__sum,
  sum(time_on_page_ms__n) AS time_on_page_ms__n,
  quantileTDigestArrayState(0.9)(p90_duration_ms__digest) AS p90_duration_ms__digest
FROM rta_content_in_50573d05
GROUP BY
  bucket,
  path,
  referrer,
  campaign;

CREATE TABLE IF NOT EXISTS rta_visitors_by_geo_in_e31d2c0f (
  minute DateTime('UTC'),
  country String,
  device String,
  visitors__uniq Array(String)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_visitors_by_geo_1m_e31d2c0f (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  visitors__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket, country, device)
TTL bucket + INTERVAL 7 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_visitors_by_geo_1m_mv_e31d2c0f
TO rta_visitors_by_geo_1m_e31d2c0f AS
SELECT
  minute AS bucket,
  country,
  device,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_visitors_by_geo_in_e31d2c0f
GROUP BY
  bucket,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_visitors_by_geo_1h_e31d2c0f (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      device
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, country, device)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_visitors_by_geo_1h_mv_e31d2c0f
TO rta_visitors_by_geo_1h_e31d2c0f AS
SELECT
  toStartOfHour(minute) AS bucket,
  country,
  device,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_visitors_by_geo_in_e31d2c0f
GROUP BY
  bucket,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_visitors_by_geo_1d_e31d2c0f (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      uniqCombined64Merge(12)(visitors__uniq)
    GROUP BY
      bucket,
      device
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket, country, device)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_visitors_by_geo_1d_mv_e31d2c0f
TO rta_visitors_by_geo_1d_e31d2c0f AS
SELECT
  toStartOfDay(minute) AS bucket,
  country,
  device,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq
FROM rta_visitors_by_geo_in_e31d2c0f
GROUP BY
  bucket,
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
