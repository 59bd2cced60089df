# scope: the attack: a CTE in a derived table does not cover its sibling in the same FROM
SELECT * FROM (WITH rta_alert_state AS (SELECT 1 AS x) SELECT * FROM rta_alert_state) AS a, rta_alert_state AS b LIMIT 3
refused: unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: the same shape with an allowed sibling runs, the sibling is the real table
SELECT * FROM (WITH rta_alert_state AS (SELECT 1 AS x) SELECT * FROM rta_alert_state) AS a, events AS b LIMIT 3
SELECT * FROM (WITH _cte1_rta_alert_state AS (SELECT 1 AS x) SELECT * FROM _cte1_rta_alert_state AS rta_alert_state) AS a CROSS JOIN rta_events_raw_692edbae AS b LIMIT 3

# scope: a CTE in a JOINed subquery does not cover the FROM beside it
SELECT * FROM rta_alert_state JOIN (WITH rta_alert_state AS (SELECT 1 AS x) SELECT * FROM rta_alert_state) AS s ON 1
refused: unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: a CTE in a WHERE subquery does not cover the outer FROM
SELECT * FROM rta_alert_state WHERE 1 IN (WITH rta_alert_state AS (SELECT 1 AS x) SELECT x FROM rta_alert_state)
refused: unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: a CTE in a scalar subquery does not cover the SELECT around it
SELECT (WITH secret AS (SELECT 1 AS x) SELECT max(x) FROM secret) AS m FROM secret
refused: unknown table 'secret'; 'secret' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: a CTE defined inside another CTE's body is not visible outside it
WITH t AS (WITH rta_alert_state AS (SELECT 1 AS x) SELECT * FROM rta_alert_state) SELECT * FROM t, rta_alert_state
refused: unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: a CTE is visible in a nested derived table
WITH t AS (SELECT country FROM events) SELECT * FROM (SELECT * FROM (SELECT country FROM t) AS i) AS o
WITH _cte1_t AS (SELECT country FROM rta_events_raw_692edbae AS events) SELECT * FROM (SELECT * FROM (SELECT country FROM _cte1_t AS t) AS i) AS o

# scope: a CTE is visible in WHERE IN, EXISTS and scalar subqueries
WITH t AS (SELECT country FROM events) SELECT count() FROM events WHERE country IN (SELECT country FROM t) AND EXISTS (SELECT 1 FROM t) AND (SELECT count() FROM t) > 0
WITH _cte1_t AS (SELECT country FROM rta_events_raw_692edbae AS events) SELECT count() FROM rta_events_raw_692edbae AS events WHERE country IN (SELECT country FROM _cte1_t AS t) AND EXISTS(SELECT 1 FROM _cte1_t AS t) AND (SELECT count() FROM _cte1_t AS t) > 0

# scope: a CTE is visible in a JOIN ON subquery
WITH t AS (SELECT country FROM events) SELECT count() FROM events AS e JOIN traffic_1d AS r ON e.country = r.country AND e.country IN (SELECT country FROM t)
WITH _cte1_t AS (SELECT country FROM rta_events_raw_692edbae AS events) SELECT count() FROM rta_events_raw_692edbae AS e JOIN rta_traffic_1d_b0f2c154 AS r ON e.country = r.country AND e.country IN (SELECT country FROM _cte1_t AS t)

# scope: a CTE named like an allowed table shadows it inside its own query
WITH events AS (SELECT 1 AS x) SELECT events.x FROM events
WITH _cte1_events AS (SELECT 1 AS x) SELECT events.x FROM _cte1_events AS events

# scope: a CTE named like an allowed table does not shadow it in a sibling
SELECT * FROM (WITH events AS (SELECT 1 AS x) SELECT x FROM events) AS a, events AS b
SELECT * FROM (WITH _cte1_events AS (SELECT 1 AS x) SELECT x FROM _cte1_events AS events) AS a CROSS JOIN rta_events_raw_692edbae AS b

# scope: a CTE named like a refused table is the CTE inside its own query
WITH rta_alert_state AS (SELECT 1 AS x) SELECT x FROM rta_alert_state
WITH _cte1_rta_alert_state AS (SELECT 1 AS x) SELECT x FROM _cte1_rta_alert_state AS rta_alert_state

# scope: a CTE named like a refused table does not cover the outer query
SELECT x FROM (WITH rta_alert_state AS (SELECT 1 AS x) SELECT x FROM rta_alert_state) AS a UNION ALL SELECT 1 FROM rta_alert_state
refused: unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: an inner WITH shadows an outer CTE of the same name
WITH t AS (SELECT country FROM events) SELECT * FROM (WITH t AS (SELECT 1 AS y) SELECT y FROM t) AS i, t
WITH _cte1_t AS (SELECT country FROM rta_events_raw_692edbae AS events) SELECT * FROM (WITH _cte2_t AS (SELECT 1 AS y) SELECT y FROM _cte2_t AS t) AS i CROSS JOIN _cte1_t AS t

# scope: a CTE sees the CTEs before it
WITH a AS (SELECT country FROM events), b AS (SELECT * FROM a) SELECT * FROM b
WITH _cte1_a AS (SELECT country FROM rta_events_raw_692edbae AS events), _cte2_b AS (SELECT * FROM _cte1_a AS a) SELECT * FROM _cte2_b AS b

# scope: a CTE does not see the CTEs after it
WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a
refused: unknown table 'b'; 'b' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: an outer CTE is visible inside an inner CTE's body
WITH a AS (SELECT country FROM events) SELECT * FROM (WITH b AS (SELECT * FROM a) SELECT * FROM b) AS i
WITH _cte1_a AS (SELECT country FROM rta_events_raw_692edbae AS events) SELECT * FROM (WITH _cte2_b AS (SELECT * FROM _cte1_a AS a) SELECT * FROM _cte2_b AS b) AS i

# scope: a non-recursive CTE's own name in its body is the table, not the CTE
WITH rta_alert_state AS (SELECT * FROM rta_alert_state) SELECT * FROM rta_alert_state
refused: unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: recursive-looking without RECURSIVE: the name inside is the table
WITH rta_alert_state AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM rta_alert_state) SELECT * FROM rta_alert_state
refused: unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: WITH RECURSIVE sees itself
WITH RECURSIVE t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT n FROM t
WITH RECURSIVE _cte1_t AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM _cte1_t AS t WHERE n < 3) SELECT n FROM _cte1_t AS t

# scope: a scalar WITH names a value, never a table
WITH (SELECT 1) AS rta_alert_state SELECT * FROM rta_alert_state
refused: unknown table 'rta_alert_state'; WITH (...) AS rta_alert_state names a value, not a table; write WITH rta_alert_state AS (SELECT ...)

# scope: a scalar WITH's subquery reads tables like any other
WITH (SELECT count() FROM rta_alert_state) AS n SELECT n
refused: unknown table 'rta_alert_state'; did you mean 'rta_alert_history'? valid names are: 'alert_history', 'audience_1d', 'audience_1h', 'audience_1m', 'audience_by_campaign_1d', 'audience_by_campaign_1h', 'audience_overall_1d', 'audience_overall_1h', 'audience_overall_1m', 'events', 'ingest_stats', 'person_aliases', 'person_traits', 'rta_alert_history', 'rta_audience_1d_253e20ab', 'rta_audience_1h_253e20ab', 'rta_audience_1m_253e20ab', 'rta_audience_by_campaign_1d_01e908c6', 'rta_audience_by_campaign_1h_01e908c6', 'rta_audience_overall_1d_b5aae0db', 'rta_audience_overall_1h_b5aae0db', 'rta_audience_overall_1m_b5aae0db', 'rta_events_raw_692edbae', 'rta_ingest_stats', 'rta_person_aliases', 'rta_person_traits', 'rta_traffic_1d_b0f2c154', 'rta_traffic_1h_b0f2c154', 'rta_traffic_1m_b0f2c154', 'rta_traffic_overall_1d_925a1046', 'rta_traffic_overall_1h_925a1046', 'rta_traffic_overall_1m_925a1046', 'traffic_1d', 'traffic_1h', 'traffic_1m', 'traffic_overall_1d', 'traffic_overall_1h', 'traffic_overall_1m'

# scope: a scalar WITH over an allowed table
WITH (SELECT count() FROM events) AS n SELECT n
WITH (SELECT count() FROM rta_events_raw_692edbae AS events) AS n SELECT n

# scope: one CTE name twice in one WITH
WITH t AS (SELECT 1 AS x), t AS (SELECT 2 AS x) SELECT * FROM t
refused: the CTE name 't' is defined twice in one WITH; give each CTE its own name

# scope: a WITH before a UNION covers both branches
WITH t AS (SELECT country FROM events) SELECT country FROM t UNION ALL SELECT country FROM t
WITH _cte1_t AS (SELECT country FROM rta_events_raw_692edbae AS events) SELECT country FROM _cte1_t AS t UNION ALL SELECT country FROM _cte1_t AS t

# scope: a WITH inside the right branch of a UNION covers that branch only
SELECT 1 FROM rta_alert_state UNION ALL (WITH rta_alert_state AS (SELECT 1 AS x) SELECT x FROM rta_alert_state)
refused: unknown table 'rta_alert_state'; 'rta_alert_state' names a CTE that is not visible here: a WITH covers its own query and the subqueries inside it, and a CTE sees only the CTEs before it

# scope: a refused table in any UNION branch
SELECT country FROM events UNION ALL SELECT country FROM events UNION DISTINCT SELECT 'x' FROM secret
refused: unknown table 'secret'; valid names are: 'alert_history', 'audience_1d', 'audience_1h', 'audience_1m', 'audience_by_campaign_1d', 'audience_by_campaign_1h', 'audience_overall_1d', 'audience_overall_1h', 'audience_overall_1m', 'events', 'ingest_stats', 'person_aliases', 'person_traits', 'rta_alert_history', 'rta_audience_1d_253e20ab', 'rta_audience_1h_253e20ab', 'rta_audience_1m_253e20ab', 'rta_audience_by_campaign_1d_01e908c6', 'rta_audience_by_campaign_1h_01e908c6', 'rta_audience_overall_1d_b5aae0db', 'rta_audience_overall_1h_b5aae0db', 'rta_audience_overall_1m_b5aae0db', 'rta_events_raw_692edbae', 'rta_ingest_stats', 'rta_person_aliases', 'rta_person_traits', 'rta_traffic_1d_b0f2c154', 'rta_traffic_1h_b0f2c154', 'rta_traffic_1m_b0f2c154', 'rta_traffic_overall_1d_925a1046', 'rta_traffic_overall_1h_925a1046', 'rta_traffic_overall_1m_925a1046', 'traffic_1d', 'traffic_1h', 'traffic_1m', 'traffic_overall_1d', 'traffic_overall_1h', 'traffic_overall_1m'

# scope: a refused table in a JOIN
SELECT * FROM events AS e LEFT JOIN rta_alert_state AS s ON e.event = s.rule
refused: unknown table 'rta_alert_state'; did you mean 'rta_alert_history'? valid names are: 'alert_history', 'audience_1d', 'audience_1h', 'audience_1m', 'audience_by_campaign_1d', 'audience_by_campaign_1h', 'audience_overall_1d', 'audience_overall_1h', 'audience_overall_1m', 'events', 'ingest_stats', 'person_aliases', 'person_traits', 'rta_alert_history', 'rta_audience_1d_253e20ab', 'rta_audience_1h_253e20ab', 'rta_audience_1m_253e20ab', 'rta_audience_by_campaign_1d_01e908c6', 'rta_audience_by_campaign_1h_01e908c6', 'rta_audience_overall_1d_b5aae0db', 'rta_audience_overall_1h_b5aae0db', 'rta_audience_overall_1m_b5aae0db', 'rta_events_raw_692edbae', 'rta_ingest_stats', 'rta_person_aliases', 'rta_person_traits', 'rta_traffic_1d_b0f2c154', 'rta_traffic_1h_b0f2c154', 'rta_traffic_1m_b0f2c154', 'rta_traffic_overall_1d_925a1046', 'rta_traffic_overall_1h_925a1046', 'rta_traffic_overall_1m_925a1046', 'traffic_1d', 'traffic_1h', 'traffic_1m', 'traffic_overall_1d', 'traffic_overall_1h', 'traffic_overall_1m'

# scope: a refused table behind an alias that names an allowed one
SELECT * FROM rta_alert_state AS events
refused: unknown table 'rta_alert_state'; did you mean 'rta_alert_history'? valid names are: 'alert_history', 'audience_1d', 'audience_1h', 'audience_1m', 'audience_by_campaign_1d', 'audience_by_campaign_1h', 'audience_overall_1d', 'audience_overall_1h', 'audience_overall_1m', 'events', 'ingest_stats', 'person_aliases', 'person_traits', 'rta_alert_history', 'rta_audience_1d_253e20ab', 'rta_audience_1h_253e20ab', 'rta_audience_1m_253e20ab', 'rta_audience_by_campaign_1d_01e908c6', 'rta_audience_by_campaign_1h_01e908c6', 'rta_audience_overall_1d_b5aae0db', 'rta_audience_overall_1h_b5aae0db', 'rta_audience_overall_1m_b5aae0db', 'rta_events_raw_692edbae', 'rta_ingest_stats', 'rta_person_aliases', 'rta_person_traits', 'rta_traffic_1d_b0f2c154', 'rta_traffic_1h_b0f2c154', 'rta_traffic_1m_b0f2c154', 'rta_traffic_overall_1d_925a1046', 'rta_traffic_overall_1h_925a1046', 'rta_traffic_overall_1m_925a1046', 'traffic_1d', 'traffic_1h', 'traffic_1m', 'traffic_overall_1d', 'traffic_overall_1h', 'traffic_overall_1m'

# scope: a subquery's alias does not make a table of that name
SELECT * FROM (SELECT 1 AS x) AS rta_alert_state, rta_alert_state
refused: unknown table 'rta_alert_state'; did you mean 'rta_alert_history'? valid names are: 'alert_history', 'audience_1d', 'audience_1h', 'audience_1m', 'audience_by_campaign_1d', 'audience_by_campaign_1h', 'audience_overall_1d', 'audience_overall_1h', 'audience_overall_1m', 'events', 'ingest_stats', 'person_aliases', 'person_traits', 'rta_alert_history', 'rta_audience_1d_253e20ab', 'rta_audience_1h_253e20ab', 'rta_audience_1m_253e20ab', 'rta_audience_by_campaign_1d_01e908c6', 'rta_audience_by_campaign_1h_01e908c6', 'rta_audience_overall_1d_b5aae0db', 'rta_audience_overall_1h_b5aae0db', 'rta_audience_overall_1m_b5aae0db', 'rta_events_raw_692edbae', 'rta_ingest_stats', 'rta_person_aliases', 'rta_person_traits', 'rta_traffic_1d_b0f2c154', 'rta_traffic_1h_b0f2c154', 'rta_traffic_1m_b0f2c154', 'rta_traffic_overall_1d_925a1046', 'rta_traffic_overall_1h_925a1046', 'rta_traffic_overall_1m_925a1046', 'traffic_1d', 'traffic_1h', 'traffic_1m', 'traffic_overall_1d', 'traffic_overall_1h', 'traffic_overall_1m'

# scope: a bare name after IN is a table read
SELECT count() FROM events WHERE 'x' IN rta_alert_state
refused: IN 'rta_alert_state': ClickHouse reads a bare name after IN as a table; write IN (SELECT column FROM table), or has(array, value) for an array

# scope: a bare name in parentheses after IN is a table read too
SELECT count() FROM events WHERE 'x' IN (rta_alert_state)
refused: IN 'rta_alert_state': ClickHouse reads a bare name after IN as a table; write IN (SELECT column FROM table), or has(array, value) for an array

# scope: a CTE name after IN
WITH t AS (SELECT 'x' AS v) SELECT count() FROM events WHERE 'x' IN t
refused: IN 't': ClickHouse reads a bare name after IN as a table; write IN (SELECT column FROM table), or has(array, value) for an array

# scope: IN a list of values
SELECT count() FROM events WHERE country IN ('US', 'DE') AND (event, device) IN (('purchase', 'mobile'), ('click', 'desktop'))
SELECT count() FROM rta_events_raw_692edbae AS events WHERE country IN ('US', 'DE') AND (event, device) IN (('purchase', 'mobile'), ('click', 'desktop'))

# scope: a table of another database
SELECT * FROM default.rta_alert_state
refused: table 'default.rta_alert_state' is outside the project; use the project's tables

# scope: system tables
SELECT * FROM system.settings
refused: table 'system.settings' is outside the project; use the project's tables

# scope: a table function inside a CTE
WITH t AS (SELECT * FROM numbers(10)) SELECT * FROM t
refused: table function 'numbers(10)'; query the project's tables by name

# scope: a table function in a JOIN subquery
SELECT * FROM events JOIN (SELECT * FROM remote('127.0.0.1', system.one)) AS r ON 1
refused: table function "remote('127.0.0.1', system.one)"; query the project's tables by name

# scope: merge() reads tables by regex
SELECT * FROM merge('^rta_alert')
refused: table function "merge('^rta_alert')"; query the project's tables by name

# scope: a parenthesized join cannot be resolved
SELECT * FROM (events AS e JOIN traffic_1d AS s ON 1) AS j
refused: cannot tell which table 'events AS e JOIN traffic_1d AS s ON 1' reads; write joins without parentheses

# scope: identifiers are case-sensitive
SELECT * FROM EVENTS
refused: unknown table 'EVENTS'; valid names are: 'alert_history', 'audience_1d', 'audience_1h', 'audience_1m', 'audience_by_campaign_1d', 'audience_by_campaign_1h', 'audience_overall_1d', 'audience_overall_1h', 'audience_overall_1m', 'events', 'ingest_stats', 'person_aliases', 'person_traits', 'rta_alert_history', 'rta_audience_1d_253e20ab', 'rta_audience_1h_253e20ab', 'rta_audience_1m_253e20ab', 'rta_audience_by_campaign_1d_01e908c6', 'rta_audience_by_campaign_1h_01e908c6', 'rta_audience_overall_1d_b5aae0db', 'rta_audience_overall_1h_b5aae0db', 'rta_audience_overall_1m_b5aae0db', 'rta_events_raw_692edbae', 'rta_ingest_stats', 'rta_person_aliases', 'rta_person_traits', 'rta_traffic_1d_b0f2c154', 'rta_traffic_1h_b0f2c154', 'rta_traffic_1m_b0f2c154', 'rta_traffic_overall_1d_925a1046', 'rta_traffic_overall_1h_925a1046', 'rta_traffic_overall_1m_925a1046', 'traffic_1d', 'traffic_1h', 'traffic_1m', 'traffic_overall_1d', 'traffic_overall_1h', 'traffic_overall_1m'

# scope: quoted names are names
SELECT count() FROM `events` AS e JOIN `rta_alert_state` ON 1
refused: unknown table 'rta_alert_state'; did you mean 'rta_alert_history'? valid names are: 'alert_history', 'audience_1d', 'audience_1h', 'audience_1m', 'audience_by_campaign_1d', 'audience_by_campaign_1h', 'audience_overall_1d', 'audience_overall_1h', 'audience_overall_1m', 'events', 'ingest_stats', 'person_aliases', 'person_traits', 'rta_alert_history', 'rta_audience_1d_253e20ab', 'rta_audience_1h_253e20ab', 'rta_audience_1m_253e20ab', 'rta_audience_by_campaign_1d_01e908c6', 'rta_audience_by_campaign_1h_01e908c6', 'rta_audience_overall_1d_b5aae0db', 'rta_audience_overall_1h_b5aae0db', 'rta_audience_overall_1m_b5aae0db', 'rta_events_raw_692edbae', 'rta_ingest_stats', 'rta_person_aliases', 'rta_person_traits', 'rta_traffic_1d_b0f2c154', 'rta_traffic_1h_b0f2c154', 'rta_traffic_1m_b0f2c154', 'rta_traffic_overall_1d_925a1046', 'rta_traffic_overall_1h_925a1046', 'rta_traffic_overall_1m_925a1046', 'traffic_1d', 'traffic_1h', 'traffic_1m', 'traffic_overall_1d', 'traffic_overall_1h', 'traffic_overall_1m'

# scope: FINAL on a rollup read by its friendly name
SELECT bucket, sum(page_views__n) AS views FROM traffic_1d FINAL GROUP BY bucket ORDER BY bucket
SELECT bucket, sum(page_views__n) AS views FROM rta_traffic_1d_b0f2c154 AS traffic_1d FINAL GROUP BY bucket ORDER BY bucket

# scope: rollup merge over an aliased friendly name
SELECT a.country, uniqCombined64Merge(12)(a.visitors__uniq) AS visitors FROM audience_1d AS a GROUP BY a.country
SELECT a.country, uniqCombined64Merge(12)(a.visitors__uniq) AS visitors FROM rta_audience_1d_253e20ab AS a GROUP BY a.country

# function: getServerSetting
SELECT getServerSetting('max_server_memory_usage')
refused: function 'getServerSetting' reads the server's settings or metadata; the console answers questions about the data only

# function: getSetting
SELECT getSetting('readonly')
refused: function 'getSetting' reads the server's settings or metadata; the console answers questions about the data only

# function: hasColumnInTable
SELECT hasColumnInTable('default', 'rta_alert_state', 'state')
refused: function 'hasColumnInTable' reads the server's settings or metadata; the console answers questions about the data only

# function: currentDatabase
SELECT currentDatabase()
refused: function 'currentDatabase' reads the server's settings or metadata; the console answers questions about the data only

# function: currentUser
SELECT currentUser()
refused: function 'currentUser' reads the server's settings or metadata; the console answers questions about the data only

# function: version
SELECT version()
refused: function 'version' reads the server's settings or metadata; the console answers questions about the data only

# function: version, quoted
SELECT `version`()
refused: function 'version' reads the server's settings or metadata; the console answers questions about the data only

# function: VERSION, any case
SELECT VERSION()
refused: function 'VERSION' reads the server's settings or metadata; the console answers questions about the data only

# function: hostName
SELECT hostName()
refused: function 'hostName' reads the server's settings or metadata; the console answers questions about the data only

# function: uptime
SELECT uptime()
refused: function 'uptime' reads the server's settings or metadata; the console answers questions about the data only

# function: timezone
SELECT timezone()
refused: function 'timezone' reads the server's settings or metadata; the console answers questions about the data only

# function: file
SELECT file('/etc/passwd')
refused: function 'file' reaches outside the database; the console reads the project's tables only

# function: url
SELECT * FROM url('http://169.254.169.254/', 'LineAsString')
refused: table function "url('http://169.254.169.254/', 'LineAsString')"; query the project's tables by name

# function: remote
SELECT * FROM remote('127.0.0.1', default.rta_alert_state)
refused: table function "remote('127.0.0.1', default.rta_alert_state)"; query the project's tables by name

# function: s3
SELECT * FROM s3('http://127.0.0.1/b/x.csv')
refused: table function "s3('http://127.0.0.1/b/x.csv')"; query the project's tables by name

# function: input
SELECT * FROM input('x String')
refused: table function "input('x String')"; query the project's tables by name

# function: dictGet
SELECT dictGet('d', 'x', toUInt64(1))
refused: function 'dictGet' reaches outside the database; the console reads the project's tables only

# function: dictGetOrDefault
SELECT dictGetOrDefault('d', 'x', 1, 'y')
refused: function 'dictGetOrDefault' reaches outside the database; the console reads the project's tables only

# function: joinGet
SELECT joinGet('j', 'x', 1)
refused: function 'joinGet' reaches outside the database; the console reads the project's tables only

# function: sleep
SELECT sleep(3)
refused: function 'sleep' is not on the console's list of analyst functions; it has aggregate (with -If, -Merge, -State ... combinators), math, string, URL, JSON, hash, date/time, conditional, conversion and array functions

# function: globalIn, the functional form of GLOBAL IN
SELECT globalIn('x', rta_alert_state)
refused: function 'globalIn' is not on the console's list of analyst functions; it has aggregate (with -If, -Merge, -State ... combinators), math, string, URL, JSON, hash, date/time, conditional, conversion and array functions

# function: APPLY calls a function on every column
SELECT * APPLY(file) FROM events
refused: function 'file' reaches outside the database; the console reads the project's tables only

# function: APPLY with an allowed function
SELECT COLUMNS('load') APPLY(toString) FROM events
SELECT COLUMNS('load') APPLY(toString) FROM rta_events_raw_692edbae AS events

# function: a probe nested in an allowed function
SELECT toString(currentDatabase()) FROM events
refused: function 'currentDatabase' reads the server's settings or metadata; the console answers questions about the data only

# function: a probe inside a CTE
WITH t AS (SELECT version() AS v) SELECT * FROM t
refused: function 'version' reads the server's settings or metadata; the console answers questions about the data only

# function: a probe in a WHERE subquery
SELECT count() FROM events WHERE event IN (SELECT getSetting('readonly'))
refused: function 'getSetting' reads the server's settings or metadata; the console answers questions about the data only

# function: a probe inside a lambda
SELECT arrayMap(x -> hostName(), [1, 2])
refused: function 'hostName' reads the server's settings or metadata; the console answers questions about the data only

# function: a probe in ORDER BY
SELECT event FROM events ORDER BY uptime()
refused: function 'uptime' reads the server's settings or metadata; the console answers questions about the data only

# function: an unknown function gets a did-you-mean
SELECT uniqCombine64(user_id) FROM events
refused: function 'uniqCombine64' is not on the console's list of analyst functions; did you mean 'uniqCombined64'? it has aggregate (with -If, -Merge, -State ... combinators), math, string, URL, JSON, hash, date/time, conditional, conversion and array functions

# function: aggregates, combinators and sketch merges
SELECT count(), countIf(event = 'purchase'), sumIf(revenue, event = 'purchase'), avgOrNull(load_ms), quantileTDigestMerge(0.95)(p95_load_ms__digest) FROM events, traffic_1d
SELECT count(), countIf(event = 'purchase'), sumIf(revenue, event = 'purchase'), avgOrNull(load_ms), quantileTDigestMerge(0.95)(p95_load_ms__digest) FROM rta_events_raw_692edbae AS events CROSS JOIN rta_traffic_1d_b0f2c154 AS traffic_1d

# function: date/time, conditional and conversion
SELECT toStartOfHour(timestamp) AS h, dateDiff('day', timestamp, now()), if(revenue > 10, 'big', 'small'), multiIf(revenue IS NULL, 0, revenue > 100, 2, 1), toInt64OrZero(insert_id), CAST(coalesce(revenue, 0) AS Int64), coalesce(revenue, 0)::Float32 FROM events
SELECT dateTrunc('HOUR', timestamp) AS h, DATE_DIFF(DAY, timestamp, now()), CASE WHEN revenue > 10 THEN 'big' ELSE 'small' END, multiIf(revenue IS NULL, 0, revenue > 100, 2, 1), toInt64OrZero(insert_id), CAST(coalesce(revenue, 0) AS Int64), CAST(coalesce(revenue, 0) AS Float32) FROM rta_events_raw_692edbae AS events

# function: strings, arrays and JSON
SELECT lower(country), concat(country, '-', device), substring(path, 1, 3), splitByChar('/', path), arrayMap(x -> length(x), splitByChar('/', path)), has(['US'], country), JSONExtractString('{"a": "b"}', 'a') FROM events
SELECT lower(country), CONCAT(country, '-', device), SUBSTRING(path, 1, 3), splitByString('/', path), arrayMap(x -> LENGTH(x), splitByString('/', path)), has(['US'], country), JSONExtractString('{"a": "b"}', 'a') FROM rta_events_raw_692edbae AS events

# scope: a subquery inside ARRAY JOIN reads a table that no scope sees
SELECT * FROM events ARRAY JOIN (SELECT groupArray(rule) FROM rta_alert_state) AS a
refused: cannot tell which table 'rta_alert_state' reads; compute the array in a CTE and ARRAY JOIN its column

# scope: a subquery inside ARRAY JOIN is refused even over an allowed table
SELECT * FROM events ARRAY JOIN (SELECT groupArray(country) FROM events) AS a
refused: cannot tell which table 'events' reads; compute the array in a CTE and ARRAY JOIN its column

# scope: ARRAY JOIN of an array expression
SELECT e.country, n FROM events AS e ARRAY JOIN range(3) AS n LIMIT 3
SELECT e.country, n FROM rta_events_raw_692edbae AS e ARRAY JOIN range(3) AS n LIMIT 3

# scope: comments are not sent on
SELECT count() /* a */ AS n FROM events -- b
SELECT count() AS n FROM rta_events_raw_692edbae AS events

# scope: query parameters, even in table position
SELECT * FROM {t:Identifier}
refused: a query parameter '{t: Identifier}'; the console takes no parameters: write the value

# function: a call sqlglot cannot render for ClickHouse unchanged
SELECT argMin(country, timestamp, 3) FROM events
refused: the console cannot pass it on unchanged: Argument 'count' is not supported for expression 'ArgMin' when targeting ClickHouse.; write it another way
