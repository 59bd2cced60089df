# Query requests against rta/examples/shop.py, now = 2026-11-28 12:30 UTC (tests/test_golden_queries.py).
# count; last=6h with grain=auto takes minutes, from the narrowest rollup (traffic_overall)
-- query: metrics=page_views last=6h
-- params: p0='2026-11-28 06:30:00', p1='2026-11-28 12:30:00'
SELECT toStartOfInterval(bucket, INTERVAL 60 SECOND) AS t, SUM(page_views__n) AS page_views FROM rta_traffic_overall_1m_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# total (sum) by the hour
-- query: metrics=revenue last=7d grain=1h
-- params: p0='2026-11-21 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, SUM(revenue__sum) AS revenue FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# maximum by the day
-- query: metrics=biggest_order last=30d grain=1d
-- params: p0='2026-10-29 00:00:00', p1='2026-11-29 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, MAX(biggest_order__max) AS biggest_order FROM rta_traffic_overall_1d_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# average: merged sum / merged count
-- query: metrics=avg_load_ms last=24h grain=1h
-- params: p0='2026-11-27 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, SUM(avg_load_ms__sum) / nullIf(SUM(avg_load_ms__n), 0) AS avg_load_ms FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# quantile: merged t-digest states
-- query: metrics=p95_load_ms last=24h grain=1h
-- params: p0='2026-11-27 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, quantileTDigestMerge(0.95)(p95_load_ms__digest) AS p95_load_ms FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# distinct: merged HLL sketches from audience_overall
-- query: metrics=visitors last=24h grain=1h
-- params: p0='2026-11-27 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_overall_1h_b5aae0db WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# a ratio (conversion = buyers / visitors): both sketches from one table, divided after merging
-- query: metrics=conversion last=7d grain=1d
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, uniqCombined64Merge(12)(buyers__uniq) AS buyers, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_overall_1d_b5aae0db WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# metrics on one table share one SELECT; a formula adds its parts' tables
-- query: metrics=revenue,purchases,revenue_per_visitor last=7d grain=1d
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, SUM(revenue__sum) AS revenue, SUM(purchases__n) AS purchases FROM rta_traffic_overall_1d_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_overall_1d_b5aae0db WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# grain=auto: more than 6 hours takes hours, more than 8 days takes days
-- query: metrics=revenue last=7d
-- params: p0='2026-11-21 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, SUM(revenue__sum) AS revenue FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

-- query: metrics=revenue last=30d
-- params: p0='2026-10-29 00:00:00', p1='2026-11-29 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, SUM(revenue__sum) AS revenue FROM rta_traffic_overall_1d_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# minutes are kept 7 days: a 5-hour range 10 days back takes hours
-- query: metrics=page_views start=2026-11-18T00:00:00Z end=2026-11-18T05:00:00Z
-- params: p0='2026-11-18 00:00:00', p1='2026-11-18 05:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, SUM(page_views__n) AS page_views FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

-- query: metrics=page_views start=2026-11-18T00:00:00Z end=2026-11-18T05:00:00Z grain=1m
-- params: p0='2026-11-18 00:00:00.000', p1='2026-11-18 05:00:00.000', p2='page_view', p3='page_view'
SELECT toDateTime(toStartOfInterval(rta_events_raw_692edbae.timestamp, INTERVAL 60 SECOND)) AS t, COUNT(CASE WHEN rta_events_raw_692edbae.event = {p3: String} THEN 1 ELSE NULL END) AS "page_views" FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.timestamp >= {p0: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p1: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.event = {p2: String} GROUP BY t ORDER BY t

# explicit minutes within retention
-- query: metrics=purchases start=2026-11-28T11:00:00Z end=2026-11-28T12:00:00Z grain=1m
-- params: p0='2026-11-28 11:00:00', p1='2026-11-28 12:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 60 SECOND) AS t, SUM(purchases__n) AS purchases FROM rta_traffic_overall_1m_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# by one dimension: the narrow audience rollup for device, traffic for country; minutes from each
-- query: metrics=visitors last=1h by=country
-- params: p0='2026-11-28 11:30:00', p1='2026-11-28 12:30:00'
SELECT toStartOfInterval(bucket, INTERVAL 60 SECOND) AS t, country, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1m_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, country ORDER BY t, country

-- query: metrics=revenue,p95_load_ms last=1h by=device
-- params: p0='2026-11-28 11:30:00', p1='2026-11-28 12:30:00'
SELECT toStartOfInterval(bucket, INTERVAL 60 SECOND) AS t, device, SUM(revenue__sum) AS revenue, quantileTDigestMerge(0.95)(p95_load_ms__digest) AS p95_load_ms FROM rta_traffic_1m_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, device ORDER BY t, device

-- query: metrics=buyers last=1h
-- params: p0='2026-11-28 11:30:00', p1='2026-11-28 12:30:00'
SELECT toStartOfInterval(bucket, INTERVAL 60 SECOND) AS t, uniqCombined64Merge(12)(buyers__uniq) AS buyers FROM rta_audience_overall_1m_b5aae0db WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

-- query: metrics=visitors last=24h grain=1h by=device
-- params: p0='2026-11-27 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, device, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1h_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, device ORDER BY t, device

-- query: metrics=revenue last=24h grain=1h by=country
-- params: p0='2026-11-27 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, country, SUM(revenue__sum) AS revenue FROM rta_traffic_1h_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, country ORDER BY t, country

# by campaign: only audience_by_campaign has it, and it keeps no minutes, so auto takes hours
-- query: metrics=visitors last=6h by=campaign
-- params: p0='2026-11-28 06:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, campaign, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_by_campaign_1h_01e908c6 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, campaign ORDER BY t, campaign

-- query: metrics=visitors last=6h grain=1m by=campaign
-- params: p0='2026-11-28 06:30:00.000', p1='2026-11-28 12:30:00.000'
SELECT toDateTime(toStartOfInterval(rta_events_raw_692edbae.timestamp, INTERVAL 60 SECOND)) AS t, rta_events_raw_692edbae.campaign AS "campaign", COALESCE(uniqCombined64(12)(rta_events_raw_692edbae.user_id), 0) AS "visitors" FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.timestamp >= {p0: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p1: DateTime64(3, 'UTC')} GROUP BY t, "campaign" ORDER BY t, "campaign"

# by two dimensions
-- query: metrics=revenue,purchases last=7d grain=1d by=country,device
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, country, device, SUM(revenue__sum) AS revenue, SUM(purchases__n) AS purchases FROM rta_traffic_1d_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, country, device ORDER BY t, country, device

-- query: metrics=buyers,visitors last=7d grain=1d by=country,device
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, country, device, uniqCombined64Merge(12)(buyers__uniq) AS buyers, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1d_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, country, device ORDER BY t, country, device

# where with one value, with a list, and two filters (a filter's dimension picks the rollup like a split)
-- query: metrics=revenue,purchases last=7d grain=1h by=country where=device=mobile
-- params: p0='2026-11-21 12:00:00', p1='2026-11-28 13:00:00', p2='mobile'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, country, SUM(revenue__sum) AS revenue, SUM(purchases__n) AS purchases FROM rta_traffic_1h_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} AND device = {p2: String} GROUP BY t, country ORDER BY t, country

-- query: metrics=visitors last=7d grain=1d where=country=US,DE
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00', p2=['US', 'DE']
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1d_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} AND country IN {p2: Array(String)} GROUP BY t ORDER BY t

-- query: metrics=conversion last=7d grain=1d by=device where=country=US,DE where=campaign=spring
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00', p2=['US', 'DE'], p3='spring'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, device, uniqCombined64Merge(12)(buyers__uniq) AS buyers, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_by_campaign_1d_01e908c6 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} AND (country IN {p2: Array(String)} AND campaign = {p3: String}) GROUP BY t, device ORDER BY t, device

# top-N by a range total that follows from the buckets (sum): ranked inside the one scan
-- query: metrics=revenue last=7d grain=1d by=country top=5
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT t, country, revenue FROM (SELECT *, DENSE_RANK() OVER (ORDER BY _total DESC, country) AS _place FROM (SELECT *, SUM(revenue) OVER (PARTITION BY country) AS _total FROM (SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, country, SUM(revenue__sum) AS revenue FROM rta_traffic_1d_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, country))) WHERE _place <= 5 ORDER BY t, country

# top-N by a maximum, and order_by a metric other than the first
-- query: metrics=biggest_order last=7d grain=1d by=device top=2
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT t, device, biggest_order FROM (SELECT *, DENSE_RANK() OVER (ORDER BY _total DESC, device) AS _place FROM (SELECT *, MAX(biggest_order) OVER (PARTITION BY device) AS _total FROM (SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, device, MAX(biggest_order__max) AS biggest_order FROM rta_traffic_1d_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, device))) WHERE _place <= 2 ORDER BY t, device

-- query: metrics=revenue,visitors last=7d grain=1d by=country top=3 order_by=revenue
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT t, country, revenue FROM (SELECT *, DENSE_RANK() OVER (ORDER BY _total DESC, country) AS _place FROM (SELECT *, SUM(revenue) OVER (PARTITION BY country) AS _total FROM (SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, country, SUM(revenue__sum) AS revenue FROM rta_traffic_1d_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, country))) WHERE _place <= 3 ORDER BY t, country
-- then rta_audience_1d_253e20ab, filtered to the groups above

# top-N by a distinct count: merged over the whole range first
-- query: metrics=visitors last=7d grain=1d by=device top=3
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT device, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1d_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY device ORDER BY device
-- then each table's series, filtered to the top 3 groups by visitors in the totals above

# compare with an earlier period of the same length, a day, a week, a year back
-- query: metrics=revenue last=7d grain=1h compare=previous_period
-- params: p0='2026-11-21 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, SUM(revenue__sum) AS revenue FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t
-- then previous_period:
-- params: p0='2026-11-14 11:00:00', p1='2026-11-21 12:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, SUM(revenue__sum) AS revenue FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

-- query: metrics=revenue,visitors last=24h grain=1h by=device compare=previous_day
-- params: p0='2026-11-27 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, device, SUM(revenue__sum) AS revenue FROM rta_traffic_1h_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, device ORDER BY t, device
-- params: p0='2026-11-27 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, device, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1h_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, device ORDER BY t, device
-- then previous_day:
-- params: p0='2026-11-26 12:00:00', p1='2026-11-27 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, device, SUM(revenue__sum) AS revenue FROM rta_traffic_1h_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, device ORDER BY t, device
-- params: p0='2026-11-26 12:00:00', p1='2026-11-27 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, device, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1h_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t, device ORDER BY t, device

-- query: metrics=purchases last=24h grain=1h compare=previous_week
-- params: p0='2026-11-27 12:00:00', p1='2026-11-28 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, SUM(purchases__n) AS purchases FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t
-- then previous_week:
-- params: p0='2026-11-20 12:00:00', p1='2026-11-21 13:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 3600 SECOND) AS t, SUM(purchases__n) AS purchases FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

-- query: metrics=revenue last=30d grain=1d compare=previous_year
-- params: p0='2026-10-29 00:00:00', p1='2026-11-29 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, SUM(revenue__sum) AS revenue FROM rta_traffic_overall_1d_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t
-- then previous_year:
-- params: p0='2025-10-30 00:00:00', p1='2025-11-30 00:00:00'
SELECT toStartOfInterval(bucket, INTERVAL 86400 SECOND) AS t, SUM(revenue__sum) AS revenue FROM rta_traffic_overall_1d_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY t ORDER BY t

# total=true: one value per group for the whole range (KPI tiles); with compare and top
-- query: metrics=revenue,purchases,visitors,conversion last=7d total=true
-- params: p0='2026-11-21 12:00:00', p1='2026-11-28 13:00:00'
SELECT SUM(revenue__sum) AS revenue, SUM(purchases__n) AS purchases FROM rta_traffic_overall_1h_925a1046 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')}
-- params: p0='2026-11-21 12:00:00', p1='2026-11-28 13:00:00'
SELECT uniqCombined64Merge(12)(visitors__uniq) AS visitors, uniqCombined64Merge(12)(buyers__uniq) AS buyers FROM rta_audience_overall_1h_b5aae0db WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')}

-- query: metrics=revenue,visitors last=7d grain=1d by=country total=true top=10 compare=previous_period
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT country, SUM(revenue__sum) AS revenue FROM rta_traffic_1d_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY country ORDER BY country
-- params: p0='2026-11-21 00:00:00', p1='2026-11-29 00:00:00'
SELECT country, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1d_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY country ORDER BY country
-- then previous_period:
-- params: p0='2026-11-13 00:00:00', p1='2026-11-21 00:00:00'
SELECT country, SUM(revenue__sum) AS revenue FROM rta_traffic_1d_b0f2c154 WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY country ORDER BY country
-- params: p0='2026-11-13 00:00:00', p1='2026-11-21 00:00:00'
SELECT country, uniqCombined64Merge(12)(visitors__uniq) AS visitors FROM rta_audience_1d_253e20ab WHERE bucket >= {p0: DateTime('UTC')} AND bucket < {p1: DateTime('UTC')} GROUP BY country ORDER BY country

# refused requests name the bad value
-- query: metrics=revenue last=7d by=user_id
error: cannot split or filter revenue by 'user_id'; valid names are: 'campaign', 'country', 'device', 'event', 'load_ms', 'path', 'revenue'; undeclared properties are prop.<name>, people's traits person.<name>

-- query: metrics=revenue last=7d grain=1w
error: unknown grain '1w'; valid grains are: auto, 1m, 1h, 1d, total

-- query: metrics=visitors last=100d grain=1h
error: no rollup answers 'visitors' at grain '1h' by nothing for data 100d old; rollups holding it: audience (by country, device; 1m kept 7d, 1h kept 90d, 1d kept 1825d); audience_overall (by nothing; 1m kept 7d, 1h kept 90d, 1d kept 1825d); audience_by_campaign (by country, device, campaign; 1h kept 90d, 1d kept 1825d); add the dimensions or grain to a rollup, or ask for a coarser grain; raw events of 'events' are kept 30d and this range starts 100d ago

# ad-hoc queries over raw events: exact aggregates, qualified columns
-- adhoc: events.last("7d", now=NOW).where(col("event") == "purchase").group_by("country", every="1d").agg(orders=count(), revenue=total("revenue")).order_by("revenue", descending=True).limit(10)
-- params: p0='purchase', p1='2026-11-21 12:30:00.000', p2='2026-11-28 12:30:01.000'
SELECT toStartOfInterval(rta_events_raw_692edbae.timestamp, INTERVAL 86400 SECOND) AS bucket, rta_events_raw_692edbae.country AS country, COUNT() AS orders, SUM(rta_events_raw_692edbae.revenue) AS revenue FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.event = {p0: String} AND rta_events_raw_692edbae.timestamp >= {p1: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p2: DateTime64(3, 'UTC')} GROUP BY bucket, rta_events_raw_692edbae.country ORDER BY revenue DESC LIMIT 10

-- adhoc: events.last("24h", now=NOW).where(device="mobile").group_by("path").agg(views=count(), visitors=distinct("user_id"), p95=quantile("load_ms", 0.95), avg=average("load_ms"), slowest=maximum("load_ms"), fastest=minimum("load_ms")).order_by("views", descending=True).limit(20)
-- params: p0='mobile', p1='2026-11-27 12:30:00.000', p2='2026-11-28 12:30:01.000'
SELECT rta_events_raw_692edbae.path AS path, COUNT() AS views, uniqExact(rta_events_raw_692edbae.user_id) AS visitors, quantileExact(0.95)(rta_events_raw_692edbae.load_ms) AS p95, AVG(rta_events_raw_692edbae.load_ms) AS avg, MAX(rta_events_raw_692edbae.load_ms) AS slowest, MIN(rta_events_raw_692edbae.load_ms) AS fastest FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.device = {p0: String} AND rta_events_raw_692edbae.timestamp >= {p1: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p2: DateTime64(3, 'UTC')} GROUP BY rta_events_raw_692edbae.path ORDER BY views DESC LIMIT 20

-- adhoc: events.where(col("country").isin(["US", "DE"]) & (col("revenue") > 100)).limit(5)
-- params: p0=['US', 'DE'], p1=100
SELECT * FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.country IN {p0: Array(String)} AND rta_events_raw_692edbae.revenue > {p1: Int64} LIMIT 5

# ad-hoc over one rollup table: metric names merge their parts
-- adhoc: rollup("traffic", "1h").last("24h", now=NOW).where(country="US").group_by("device", every="1h").agg("revenue", "avg_load_ms", "p95_load_ms").order_by("bucket")
-- params: p0='US', p1='2026-11-27 12:30:00', p2='2026-11-28 12:30:01'
SELECT toStartOfInterval(rta_traffic_1h_b0f2c154.bucket, INTERVAL 3600 SECOND) AS bucket, rta_traffic_1h_b0f2c154.device AS device, SUM(revenue__sum) AS revenue, SUM(avg_load_ms__sum) / nullIf(SUM(avg_load_ms__n), 0) AS avg_load_ms, quantileTDigestMerge(0.95)(p95_load_ms__digest) AS p95_load_ms FROM rta_traffic_1h_b0f2c154 WHERE rta_traffic_1h_b0f2c154.country = {p0: String} AND rta_traffic_1h_b0f2c154.bucket >= {p1: DateTime('UTC')} AND rta_traffic_1h_b0f2c154.bucket < {p2: DateTime('UTC')} GROUP BY bucket, rta_traffic_1h_b0f2c154.device ORDER BY bucket ASC

-- adhoc: rollup("audience_by_campaign", "1d").group_by("campaign").agg("visitors", "buyers").order_by("visitors", descending=True)
-- params: none
SELECT rta_audience_by_campaign_1d_01e908c6.campaign AS campaign, uniqCombined64Merge(12)(visitors__uniq) AS visitors, uniqCombined64Merge(12)(buyers__uniq) AS buyers FROM rta_audience_by_campaign_1d_01e908c6 GROUP BY rta_audience_by_campaign_1d_01e908c6.campaign ORDER BY visitors DESC

# the raw-events fallback: an undeclared property no rollup has (a missing key is NULL, its own group)
-- query: metrics=purchases,revenue last=24h grain=1h by=prop.plan
-- params: p0='2026-11-27 12:00:00.000', p1='2026-11-28 13:00:00.000', p2='purchase', p3='purchase', p4='purchase', p5='purchase'
SELECT toDateTime(toStartOfInterval(rta_events_raw_692edbae.timestamp, INTERVAL 3600 SECOND)) AS t, CASE WHEN mapContains(rta_events_raw_692edbae."props", 'plan') THEN rta_events_raw_692edbae."props"['plan'] ELSE NULL END AS "prop.plan", COUNT(CASE WHEN rta_events_raw_692edbae.event = {p4: String} THEN 1 ELSE NULL END) AS "purchases", COALESCE(SUM(CASE WHEN rta_events_raw_692edbae.event = {p5: String} THEN rta_events_raw_692edbae.revenue ELSE NULL END), 0) AS "revenue" FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.timestamp >= {p0: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p1: DateTime64(3, 'UTC')} AND (rta_events_raw_692edbae.event = {p2: String} OR rta_events_raw_692edbae.event = {p3: String}) GROUP BY t, "prop.plan" ORDER BY t, "prop.plan"

# a comparison on a measure and a nested property
-- query: metrics=purchases last=7d grain=1d by=country where=revenue>10 where=prop.cart.discount>=5
-- params: p0='2026-11-21 00:00:00.000', p1='2026-11-29 00:00:00.000', p2=10, p3=5, p4='purchase', p5='purchase'
SELECT toDateTime(toStartOfInterval(rta_events_raw_692edbae.timestamp, INTERVAL 86400 SECOND)) AS t, rta_events_raw_692edbae.country AS "country", COUNT(CASE WHEN rta_events_raw_692edbae.event = {p5: String} THEN 1 ELSE NULL END) AS "purchases" FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.timestamp >= {p0: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p1: DateTime64(3, 'UTC')} AND (rta_events_raw_692edbae.revenue > {p2: Int64} AND CASE WHEN mapContains(rta_events_raw_692edbae."props_num", 'cart.discount') THEN rta_events_raw_692edbae."props_num"['cart.discount'] ELSE NULL END >= {p3: Int64}) AND rta_events_raw_692edbae.event = {p4: String} GROUP BY t, "country" ORDER BY t, "country"

# a person trait: the latest trait of the event's person, aliased anonymous ids included
-- query: metrics=revenue,visitors last=7d grain=1d where=person.plan=pro
-- params: p0='2026-11-21 00:00:00.000', p1='2026-11-29 00:00:00.000', p2='purchase', p3='pro', p4='plan', p5='plan'
SELECT _per_user.t AS t, COALESCE(sumMerge(_per_user."revenue"), 0) AS "revenue", COALESCE(uniqCombined64Merge(12)(_per_user."visitors"), 0) AS "visitors" FROM (SELECT rta_events_raw_692edbae.user_id AS _user, toDateTime(toStartOfInterval(rta_events_raw_692edbae.timestamp, INTERVAL 86400 SECOND)) AS t, sumState(CASE WHEN rta_events_raw_692edbae.event = {p2: String} THEN rta_events_raw_692edbae.revenue ELSE NULL END) AS "revenue", uniqCombined64State(12)(rta_events_raw_692edbae.user_id) AS "visitors" FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.timestamp >= {p0: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p1: DateTime64(3, 'UTC')} GROUP BY _user, t) AS _per_user LEFT JOIN (SELECT anonymous, argMax(person, at) AS person FROM rta_person_aliases GROUP BY anonymous) AS _rta_alias ON _rta_alias.anonymous = _per_user._user LEFT JOIN (SELECT person, CASE WHEN countIf(key = {p4: String}) > 0 THEN argMaxIf(value, updated, key = {p4: String}) ELSE NULL END AS t0 FROM (SELECT CASE WHEN _rta_alias.person = '' THEN _t.person ELSE _rta_alias.person END AS person, _t.key AS key, argMax(_t.value, _t.updated) AS value, MAX(_t.updated) AS updated FROM rta_person_traits AS _t LEFT JOIN (SELECT anonymous, argMax(person, at) AS person FROM rta_person_aliases GROUP BY anonymous) AS _rta_alias ON _rta_alias.anonymous = _t.person WHERE _t.key IN ({p5: String}) GROUP BY person, key) AS _latest GROUP BY person) AS _rta_traits ON _rta_traits.person = CASE WHEN _rta_alias.person = '' THEN _per_user._user ELSE _rta_alias.person END WHERE _rta_traits.t0 = {p3: String} GROUP BY t ORDER BY t

# top groups by a distinct count from raw events: the rollups' sketch, ranked by merging the range
-- query: metrics=visitors last=24h grain=1h by=path top=3
-- params: p0='2026-11-27 12:00:00.000', p1='2026-11-28 13:00:00.000'
SELECT rta_events_raw_692edbae.path AS "path", COALESCE(uniqCombined64(12)(rta_events_raw_692edbae.user_id), 0) AS "visitors" FROM rta_events_raw_692edbae WHERE rta_events_raw_692edbae.timestamp >= {p0: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p1: DateTime64(3, 'UTC')} GROUP BY "path" ORDER BY "path"
-- then each table's series, filtered to the top 3 groups by visitors in the totals above

# beyond the raw events' 30 days: the error says which rollup to add
-- query: metrics=page_views last=45d grain=1d by=path
error: no rollup answers 'page_views' at grain '1d' by ['path'] for data 45d old; rollups holding it: traffic (by country, device, campaign; 1m kept 7d, 1h kept 90d, 1d kept 1825d); traffic_overall (by nothing; 1m kept 7d, 1h kept 90d, 1d kept 1825d); add the dimensions or grain to a rollup, or ask for a coarser grain; raw events of 'events' are kept 30d and this range starts 45d ago; add rollup("by_path", [page_views], by=['path']) to keep the answer

-- adhoc: events.last("24h", now=NOW).group_by("person.plan").agg(n=count(), revenue=total("revenue"))
-- params: p0='2026-11-27 12:30:00.000', p1='2026-11-28 12:30:01.000', p2='plan', p3='plan'
SELECT _rta_traits.t0 AS "person.plan", COUNT() AS n, SUM(rta_events_raw_692edbae.revenue) AS revenue FROM rta_events_raw_692edbae LEFT JOIN (SELECT anonymous, argMax(person, at) AS person FROM rta_person_aliases GROUP BY anonymous) AS _rta_alias ON _rta_alias.anonymous = rta_events_raw_692edbae.user_id LEFT JOIN (SELECT person, CASE WHEN countIf(key = {p2: String}) > 0 THEN argMaxIf(value, updated, key = {p2: String}) ELSE NULL END AS t0 FROM (SELECT CASE WHEN _rta_alias.person = '' THEN _t.person ELSE _rta_alias.person END AS person, _t.key AS key, argMax(_t.value, _t.updated) AS value, MAX(_t.updated) AS updated FROM rta_person_traits AS _t LEFT JOIN (SELECT anonymous, argMax(person, at) AS person FROM rta_person_aliases GROUP BY anonymous) AS _rta_alias ON _rta_alias.anonymous = _t.person WHERE _t.key IN ({p3: String}) GROUP BY person, key) AS _latest GROUP BY person) AS _rta_traits ON _rta_traits.person = CASE WHEN _rta_alias.person = '' THEN rta_events_raw_692edbae.user_id ELSE _rta_alias.person END WHERE rta_events_raw_692edbae.timestamp >= {p0: DateTime64(3, 'UTC')} AND rta_events_raw_692edbae.timestamp < {p1: DateTime64(3, 'UTC')} GROUP BY _rta_traits.t0
