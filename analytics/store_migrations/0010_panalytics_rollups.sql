-- Rollups for the product analyses (retention, overview, feature usage), kept current by
-- materialized views as events arrive, so pages never rescan raw events for these figures.
-- min / argMin / distinct days are unchanged by duplicate events, so re-inserted uuids (and
-- the backfill below, if it runs twice) leave them correct.
CREATE TABLE IF NOT EXISTS panalytics_user_first (
    event LowCardinality(String),
    user_id String,
    first_ts SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    first_props AggregateFunction(argMin, String, Tuple(DateTime64(3, 'UTC'), String))
) ENGINE = AggregatingMergeTree
ORDER BY (event, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS panalytics_user_first_mv TO panalytics_user_first AS
SELECT event, user_id, min(timestamp) AS first_ts,
       argMinState(properties, (timestamp, properties)) AS first_props
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
SELECT event, user_id, min(timestamp), argMinState(properties, (timestamp, properties))
FROM events
WHERE (SELECT count() FROM panalytics_user_first) = 0
GROUP BY event, user_id;

INSERT INTO panalytics_user_days
SELECT DISTINCT event, toDate(timestamp), user_id
FROM events
WHERE (SELECT count() FROM panalytics_user_days) = 0;
