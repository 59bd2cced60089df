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

CREATE TABLE IF NOT EXISTS rta_events_raw_692edbae (
  timestamp DateTime64(3, 'UTC'),
  insert_id String,
  user_id String,
  event LowCardinality(String),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  path LowCardinality(String),
  revenue Nullable(Float64),
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

CREATE TABLE IF NOT EXISTS rta_traffic_in_b0f2c154 (
  minute DateTime('UTC'),
  country String,
  device String,
  campaign String,
  page_views__n UInt64,
  clicks__n UInt64,
  add_to_carts__n UInt64,
  purchases__n UInt64,
  revenue__sum Float64,
  biggest_order__max Nullable(Float64),
  avg_load_ms__sum Float64,
  avg_load_ms__n UInt64,
  p95_load_ms__digest Array(Float64)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_traffic_1m_b0f2c154 (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  page_views__n SimpleAggregateFunction(sum, UInt64),
  clicks__n SimpleAggregateFunction(sum, UInt64),
  add_to_carts__n SimpleAggregateFunction(sum, UInt64),
  purchases__n SimpleAggregateFunction(sum, UInt64),
  revenue__sum SimpleAggregateFunction(sum, Float64),
  biggest_order__max SimpleAggregateFunction(max, Nullable(Float64)),
  avg_load_ms__sum SimpleAggregateFunction(sum, Float64),
  avg_load_ms__n SimpleAggregateFunction(sum, UInt64),
  p95_load_ms__digest AggregateFunction(quantileTDigest(0.95), Float64)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket, country, device, campaign)
TTL bucket + INTERVAL 7 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_traffic_1m_mv_b0f2c154
TO rta_traffic_1m_b0f2c154 AS
SELECT
  minute AS bucket,
  country,
  device,
  campaign,
  sum(page_views__n) AS page_views__n,
  sum(clicks__n) AS clicks__n,
  sum(add_to_carts__n) AS add_to_carts__n,
  sum(purchases__n) AS purchases__n,
  sum(revenue__sum) AS revenue__sum,
  max(biggest_order__max) AS biggest_order__max,
  sum(avg_load_ms__sum) AS avg_load_ms__sum,
  sum(avg_load_ms__n) AS avg_load_ms__n,
  quantileTDigestArrayState(0.95)(p95_load_ms__digest) AS p95_load_ms__digest
FROM rta_traffic_in_b0f2c154
GROUP BY
  bucket,
  country,
  device,
  campaign;

CREATE TABLE IF NOT EXISTS rta_traffic_1h_b0f2c154 (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  page_views__n SimpleAggregateFunction(sum, UInt64),
  clicks__n SimpleAggregateFunction(sum, UInt64),
  add_to_carts__n SimpleAggregateFunction(sum, UInt64),
  purchases__n SimpleAggregateFunction(sum, UInt64),
  revenue__sum SimpleAggregateFunction(sum, Float64),
  biggest_order__max SimpleAggregateFunction(max, Nullable(Float64)),
  avg_load_ms__sum SimpleAggregateFunction(sum, Float64),
  avg_load_ms__n SimpleAggregateFunction(sum, UInt64),
  p95_load_ms__digest AggregateFunction(quantileTDigest(0.95), Float64),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      SUM(page_views__n),
      SUM(clicks__n),
      SUM(add_to_carts__n),
      SUM(purchases__n),
      SUM(revenue__sum),
      MAX(biggest_order__max),
      SUM(avg_load_ms__sum),
      SUM(avg_load_ms__n),
      quantileTDigestMerge(0.95)(p95_load_ms__digest)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      SUM(page_views__n),
      SUM(clicks__n),
      SUM(add_to_carts__n),
      SUM(purchases__n),
      SUM(revenue__sum),
      MAX(biggest_order__max),
      SUM(avg_load_ms__sum),
      SUM(avg_load_ms__n),
      quantileTDigestMerge(0.95)(p95_load_ms__digest)
    GROUP BY
      bucket,
      device
  ),
  PROJECTION by_campaign (
    SELECT
      bucket,
      campaign,
      SUM(page_views__n),
      SUM(clicks__n),
      SUM(add_to_carts__n),
      SUM(purchases__n),
      SUM(revenue__sum),
      MAX(biggest_order__max),
      SUM(avg_load_ms__sum),
      SUM(avg_load_ms__n),
      quantileTDigestMerge(0.95)(p95_load_ms__digest)
    GROUP BY
      bucket,
      campaign
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, country, device, campaign)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_traffic_1h_mv_b0f2c154
TO rta_traffic_1h_b0f2c154 AS
SELECT
  toStartOfHour(minute) AS bucket,
  country,
  device,
  campaign,
  sum(page_views__n) AS page_views__n,
  sum(clicks__n) AS clicks__n,
  sum(add_to_carts__n) AS add_to_carts__n,
  sum(purchases__n) AS purchases__n,
  sum(revenue__sum) AS revenue__sum,
  max(biggest_order__max) AS biggest_order__max,
  sum(avg_load_ms__sum) AS avg_load_ms__sum,
  sum(avg_load_ms__n) AS avg_load_ms__n,
  quantileTDigestArrayState(0.95)(p95_load_ms__digest) AS p95_load_ms__digest
FROM rta_traffic_in_b0f2c154
GROUP BY
  bucket,
  country,
  device,
  campaign;

CREATE TABLE IF NOT EXISTS rta_traffic_1d_b0f2c154 (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  page_views__n SimpleAggregateFunction(sum, UInt64),
  clicks__n SimpleAggregateFunction(sum, UInt64),
  add_to_carts__n SimpleAggregateFunction(sum, UInt64),
  purchases__n SimpleAggregateFunction(sum, UInt64),
  revenue__sum SimpleAggregateFunction(sum, Float64),
  biggest_order__max SimpleAggregateFunction(max, Nullable(Float64)),
  avg_load_ms__sum SimpleAggregateFunction(sum, Float64),
  avg_load_ms__n SimpleAggregateFunction(sum, UInt64),
  p95_load_ms__digest AggregateFunction(quantileTDigest(0.95), Float64),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      SUM(page_views__n),
      SUM(clicks__n),
      SUM(add_to_carts__n),
      SUM(purchases__n),
      SUM(revenue__sum),
      MAX(biggest_order__max),
      SUM(avg_load_ms__sum),
      SUM(avg_load_ms__n),
      quantileTDigestMerge(0.95)(p95_load_ms__digest)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      SUM(page_views__n),
      SUM(clicks__n),
      SUM(add_to_carts__n),
      SUM(purchases__n),
      SUM(revenue__sum),
      MAX(biggest_order__max),
      SUM(avg_load_ms__sum),
      SUM(avg_load_ms__n),
      quantileTDigestMerge(0.95)(p95_load_ms__digest)
    GROUP BY
      bucket,
      device
  ),
  PROJECTION by_campaign (
    SELECT
      bucket,
      campaign,
      SUM(page_views__n),
      SUM(clicks__n),
      SUM(add_to_carts__n),
      SUM(purchases__n),
      SUM(revenue__sum),
      MAX(biggest_order__max),
      SUM(avg_load_ms__sum),
      SUM(avg_load_ms__n),
      quantileTDigestMerge(0.95)(p95_load_ms__digest)
    GROUP BY
      bucket,
      campaign
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket, country, device, campaign)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_traffic_1d_mv_b0f2c154
TO rta_traffic_1d_b0f2c154 AS
SELECT
  toStartOfDay(minute) AS bucket,
  country,
  device,
  campaign,
  sum(page_views__n) AS page_views__n,
  sum(clicks__n) AS clicks__n,
  sum(add_to_carts__n) AS add_to_carts__n,
  sum(purchases__n) AS purchases__n,
  sum(revenue__sum) AS revenue__sum,
  max(biggest_order__max) AS biggest_order__max,
  sum(avg_load_ms__sum) AS avg_load_ms__sum,
  sum(avg_load_ms__n) AS avg_load_ms__n,
  quantileTDigestArrayState(0.95)(p95_load_ms__digest) AS p95_load_ms__digest
FROM rta_traffic_in_b0f2c154
GROUP BY
  bucket,
  country,
  device,
  campaign;

CREATE TABLE IF NOT EXISTS rta_traffic_overall_in_925a1046 (
  minute DateTime('UTC'),
  page_views__n UInt64,
  clicks__n UInt64,
  add_to_carts__n UInt64,
  purchases__n UInt64,
  revenue__sum Float64,
  biggest_order__max Nullable(Float64),
  avg_load_ms__sum Float64,
  avg_load_ms__n UInt64,
  p95_load_ms__digest Array(Float64)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_traffic_overall_1m_925a1046 (
  bucket DateTime('UTC'),
  page_views__n SimpleAggregateFunction(sum, UInt64),
  clicks__n SimpleAggregateFunction(sum, UInt64),
  add_to_carts__n SimpleAggregateFunction(sum, UInt64),
  purchases__n SimpleAggregateFunction(sum, UInt64),
  revenue__sum SimpleAggregateFunction(sum, Float64),
  biggest_order__max SimpleAggregateFunction(max, Nullable(Float64)),
  avg_load_ms__sum SimpleAggregateFunction(sum, Float64),
  avg_load_ms__n SimpleAggregateFunction(sum, UInt64),
  p95_load_ms__digest AggregateFunction(quantileTDigest(0.95), Float64)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 7 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_traffic_overall_1m_mv_925a1046
TO rta_traffic_overall_1m_925a1046 AS
SELECT
  minute AS bucket,
  sum(page_views__n) AS page_views__n,
  sum(clicks__n) AS clicks__n,
  sum(add_to_carts__n) AS add_to_carts__n,
  sum(purchases__n) AS purchases__n,
  sum(revenue__sum) AS revenue__sum,
  max(biggest_order__max) AS biggest_order__max,
  sum(avg_load_ms__sum) AS avg_load_ms__sum,
  sum(avg_load_ms__n) AS avg_load_ms__n,
  quantileTDigestArrayState(0.95)(p95_load_ms__digest) AS p95_load_ms__digest
FROM rta_traffic_overall_in_925a1046
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_traffic_overall_1h_925a1046 (
  bucket DateTime('UTC'),
  page_views__n SimpleAggregateFunction(sum, UInt64),
  clicks__n SimpleAggregateFunction(sum, UInt64),
  add_to_carts__n SimpleAggregateFunction(sum, UInt64),
  purchases__n SimpleAggregateFunction(sum, UInt64),
  revenue__sum SimpleAggregateFunction(sum, Float64),
  biggest_order__max SimpleAggregateFunction(max, Nullable(Float64)),
  avg_load_ms__sum SimpleAggregateFunction(sum, Float64),
  avg_load_ms__n SimpleAggregateFunction(sum, UInt64),
  p95_load_ms__digest AggregateFunction(quantileTDigest(0.95), Float64)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_traffic_overall_1h_mv_925a1046
TO rta_traffic_overall_1h_925a1046 AS
SELECT
  toStartOfHour(minute) AS bucket,
  sum(page_views__n) AS page_views__n,
  sum(clicks__n) AS clicks__n,
  sum(add_to_carts__n) AS add_to_carts__n,
  sum(purchases__n) AS purchases__n,
  sum(revenue__sum) AS revenue__sum,
  max(biggest_order__max) AS biggest_order__max,
  sum(avg_load_ms__sum) AS avg_load_ms__sum,
  sum(avg_load_ms__n) AS avg_load_ms__n,
  quantileTDigestArrayState(0.95)(p95_load_ms__digest) AS p95_load_ms__digest
FROM rta_traffic_overall_in_925a1046
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_traffic_overall_1d_925a1046 (
  bucket DateTime('UTC'),
  page_views__n SimpleAggregateFunction(sum, UInt64),
  clicks__n SimpleAggregateFunction(sum, UInt64),
  add_to_carts__n SimpleAggregateFunction(sum, UInt64),
  purchases__n SimpleAggregateFunction(sum, UInt64),
  revenue__sum SimpleAggregateFunction(sum, Float64),
  biggest_order__max SimpleAggregateFunction(max, Nullable(Float64)),
  avg_load_ms__sum SimpleAggregateFunction(sum, Float64),
  avg_load_ms__n SimpleAggregateFunction(sum, UInt64),
  p95_load_ms__digest AggregateFunction(quantileTDigest(0.95), Float64)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_traffic_overall_1d_mv_925a1046
TO rta_traffic_overall_1d_925a1046 AS
SELECT
  toStartOfDay(minute) AS bucket,
  sum(page_views__n) AS page_views__n,
  sum(clicks__n) AS clicks__n,
  sum(add_to_carts__n) AS add_to_carts__n,
  sum(purchases__n) AS purchases__n,
  sum(revenue__sum) AS revenue__sum,
  max(biggest_order__max) AS biggest_order__max,
  sum(avg_load_ms__sum) AS avg_load_ms__sum,
  sum(avg_load_ms__n) AS avg_load_ms__n,
  quantileTDigestArrayState(0.95)(p95_load_ms__digest) AS p95_load_ms__digest
FROM rta_traffic_overall_in_925a1046
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_audience_in_253e20ab (
  minute DateTime('UTC'),
  country String,
  device String,
  visitors__uniq Array(String),
  buyers__uniq Array(String)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_audience_1m_253e20ab (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  buyers__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket, country, device)
TTL bucket + INTERVAL 7 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_audience_1m_mv_253e20ab
TO rta_audience_1m_253e20ab AS
SELECT
  minute AS bucket,
  country,
  device,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq,
  uniqCombined64ArrayState(12)(buyers__uniq) AS buyers__uniq
FROM rta_audience_in_253e20ab
GROUP BY
  bucket,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_audience_1h_253e20ab (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  buyers__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
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

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_audience_1h_mv_253e20ab
TO rta_audience_1h_253e20ab AS
SELECT
  toStartOfHour(minute) AS bucket,
  country,
  device,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq,
  uniqCombined64ArrayState(12)(buyers__uniq) AS buyers__uniq
FROM rta_audience_in_253e20ab
GROUP BY
  bucket,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_audience_1d_253e20ab (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  buyers__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
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

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_audience_1d_mv_253e20ab
TO rta_audience_1d_253e20ab AS
SELECT
  toStartOfDay(minute) AS bucket,
  country,
  device,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq,
  uniqCombined64ArrayState(12)(buyers__uniq) AS buyers__uniq
FROM rta_audience_in_253e20ab
GROUP BY
  bucket,
  country,
  device;

CREATE TABLE IF NOT EXISTS rta_audience_overall_in_b5aae0db (
  minute DateTime('UTC'),
  visitors__uniq Array(String),
  buyers__uniq Array(String)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_audience_overall_1m_b5aae0db (
  bucket DateTime('UTC'),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  buyers__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMMDD(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 7 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_audience_overall_1m_mv_b5aae0db
TO rta_audience_overall_1m_b5aae0db AS
SELECT
  minute AS bucket,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq,
  uniqCombined64ArrayState(12)(buyers__uniq) AS buyers__uniq
FROM rta_audience_overall_in_b5aae0db
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_audience_overall_1h_b5aae0db (
  bucket DateTime('UTC'),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  buyers__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_audience_overall_1h_mv_b5aae0db
TO rta_audience_overall_1h_b5aae0db AS
SELECT
  toStartOfHour(minute) AS bucket,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq,
  uniqCombined64ArrayState(12)(buyers__uniq) AS buyers__uniq
FROM rta_audience_overall_in_b5aae0db
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_audience_overall_1d_b5aae0db (
  bucket DateTime('UTC'),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  buyers__uniq AggregateFunction(uniqCombined64(12), String)
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_audience_overall_1d_mv_b5aae0db
TO rta_audience_overall_1d_b5aae0db AS
SELECT
  toStartOfDay(minute) AS bucket,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq,
  uniqCombined64ArrayState(12)(buyers__uniq) AS buyers__uniq
FROM rta_audience_overall_in_b5aae0db
GROUP BY
  bucket;

CREATE TABLE IF NOT EXISTS rta_audience_by_campaign_in_01e908c6 (
  minute DateTime('UTC'),
  country String,
  device String,
  campaign String,
  visitors__uniq Array(String),
  buyers__uniq Array(String)
)
ENGINE=Null;

CREATE TABLE IF NOT EXISTS rta_audience_by_campaign_1h_01e908c6 (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  buyers__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
    GROUP BY
      bucket,
      device
  ),
  PROJECTION by_campaign (
    SELECT
      bucket,
      campaign,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
    GROUP BY
      bucket,
      campaign
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (bucket, country, device, campaign)
TTL bucket + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_audience_by_campaign_1h_mv_01e908c6
TO rta_audience_by_campaign_1h_01e908c6 AS
SELECT
  toStartOfHour(minute) AS bucket,
  country,
  device,
  campaign,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq,
  uniqCombined64ArrayState(12)(buyers__uniq) AS buyers__uniq
FROM rta_audience_by_campaign_in_01e908c6
GROUP BY
  bucket,
  country,
  device,
  campaign;

CREATE TABLE IF NOT EXISTS rta_audience_by_campaign_1d_01e908c6 (
  bucket DateTime('UTC'),
  country LowCardinality(String),
  device LowCardinality(String),
  campaign LowCardinality(String),
  visitors__uniq AggregateFunction(uniqCombined64(12), String),
  buyers__uniq AggregateFunction(uniqCombined64(12), String),
  PROJECTION by_country (
    SELECT
      bucket,
      country,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
    GROUP BY
      bucket,
      country
  ),
  PROJECTION by_device (
    SELECT
      bucket,
      device,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
    GROUP BY
      bucket,
      device
  ),
  PROJECTION by_campaign (
    SELECT
      bucket,
      campaign,
      uniqCombined64Merge(12)(visitors__uniq),
      uniqCombined64Merge(12)(buyers__uniq)
    GROUP BY
      bucket,
      campaign
  )
)
ENGINE=AggregatingMergeTree
PARTITION BY toYear(bucket)
ORDER BY (bucket, country, device, campaign)
TTL bucket + INTERVAL 1825 DAY
SETTINGS
  non_replicated_deduplication_window = 10000,
  deduplicate_merge_projection_mode = 'rebuild';

CREATE MATERIALIZED VIEW IF NOT EXISTS rta_audience_by_campaign_1d_mv_01e908c6
TO rta_audience_by_campaign_1d_01e908c6 AS
SELECT
  toStartOfDay(minute) AS bucket,
  country,
  device,
  campaign,
  uniqCombined64ArrayState(12)(visitors__uniq) AS visitors__uniq,
  uniqCombined64ArrayState(12)(buyers__uniq) AS buyers__uniq
FROM rta_audience_by_campaign_in_01e908c6
GROUP BY
  bucket,
  country,
  device,
  campaign;

CREATE TABLE IF NOT EXISTS rta_alert_history (
  at DateTime64(3, 'UTC'),
  recorded DateTime64(3, 'UTC'),
  rule LowCardinality(String),
  group String,
  kind LowCardinality(String),
  status LowCardinality(String),
  value Nullable(Float64),
  current Nullable(Float64),
  provisional Bool,
  channel String,
  detail String
)
ENGINE=MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (rule, at)
TTL toDateTime(at) + INTERVAL 90 DAY
SETTINGS
  non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS rta_alert_state (
  rule String,
  group String,
  state String,
  version UInt64
)
ENGINE=ReplacingMergeTree(version)
ORDER BY (rule, group)
SETTINGS
  non_replicated_deduplication_window = 10000;

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
