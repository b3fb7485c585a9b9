-- Each user's active weeks and months per event, kept by materialized views: weekly and
-- monthly retention read these (about one row per user and month) instead of active days.
CREATE TABLE IF NOT EXISTS panalytics_user_periods (
    kind LowCardinality(String),
    event LowCardinality(String),
    start Date,
    user_id String
) ENGINE = ReplacingMergeTree
ORDER BY (kind, event, start, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS panalytics_user_months_mv TO panalytics_user_periods AS
SELECT DISTINCT 'month' AS kind, event, toStartOfMonth(timestamp) AS start, user_id
FROM events;

CREATE MATERIALIZED VIEW IF NOT EXISTS panalytics_user_weeks_mv TO panalytics_user_periods AS
SELECT DISTINCT 'week' AS kind, event, toMonday(timestamp) AS start, user_id
FROM events;

INSERT INTO panalytics_user_periods
SELECT DISTINCT 'month', event, toStartOfMonth(timestamp), user_id
FROM events
WHERE (SELECT count() FROM panalytics_user_periods) = 0;

INSERT INTO panalytics_user_periods
SELECT DISTINCT 'week', event, toMonday(timestamp), user_id
FROM events
WHERE (SELECT countIf(kind = 'week') FROM panalytics_user_periods) = 0;
