-- Rollups for the product analyses (retention, overview, feature usage), kept current by
-- materialized views as events arrive, so pages never rescan raw events for these figures.
-- min / argMin / distinct days are unchanged by duplicate events, so re-inserted uuids (and
-- the backfill below, if it runs twice) leave them correct.
-- The argMin key is CAST to the column's unnamed tuple type: servers with
-- enable_named_columns_in_function_tuple = 1 (the default of 24.8 LTS) make `(timestamp,
-- properties)` a named tuple, whose state the column refuses (CANNOT_CONVERT_TYPE). The CAST
-- changes neither the state's bytes nor the result where the tuple was already unnamed.
-- A store that applied this file before the CAST keeps its view: 0021 swaps it for this one.
CREATE TABLE IF NOT EXISTS panalytics_user_first (
    event LowCardinality(String),
    user_id String,
    first_ts SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    first_props AggregateFunction(argMin, String, Tuple(DateTime64(3, 'UTC'), String))
) ENGINE = AggregatingMergeTree
ORDER BY (event, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS panalytics_user_first_mv TO panalytics_user_first AS
SELECT event, user_id, min(timestamp) AS first_ts,
       argMinState(properties, CAST((timestamp, properties) AS Tuple(DateTime64(3, 'UTC'), String)))
           AS first_props
FROM events
GROUP BY event, user_id;

CREATE TABLE IF NOT EXISTS panalytics_user_days (
    event LowCardinality(String),
    day Date,
    user_id String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (event, day, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS panalytics_user_days_mv TO panalytics_user_days AS
SELECT DISTINCT event, toDate(timestamp) AS day, user_id
FROM events;

-- Backfill from events stored before these views existed.
INSERT INTO panalytics_user_first
SELECT event, user_id, min(timestamp),
       argMinState(properties, CAST((timestamp, properties) AS Tuple(DateTime64(3, 'UTC'), String)))
FROM events
WHERE (SELECT count() FROM panalytics_user_first) = 0
GROUP BY event, user_id;

INSERT INTO panalytics_user_days
SELECT DISTINCT event, toDate(timestamp), user_id
FROM events
WHERE (SELECT count() FROM panalytics_user_days) = 0;
