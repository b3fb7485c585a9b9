-- Rollups for funnels and revenue, kept current by materialized views as events arrive.
-- Each user's distinct times of each event: a sequential funnel over distinct step events
-- without property filters needs only "the earliest step-k time at or after step k-1", which
-- the same time repeated (a re-inserted uuid, or this backfill running twice) cannot change;
-- merges drop the repeats. Late events simply add their time.
CREATE TABLE IF NOT EXISTS panalytics_user_event_times (
    event LowCardinality(String),
    user_id String,
    times SimpleAggregateFunction(groupUniqArrayArray, Array(DateTime64(3, 'UTC')))
) ENGINE = AggregatingMergeTree
ORDER BY (event, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS panalytics_user_event_times_mv
TO panalytics_user_event_times AS
SELECT event, user_id, groupUniqArray(timestamp) AS times
FROM events
GROUP BY event, user_id;

-- Subscription events with their MRR and tier parsed once at insert (0 and '' for a
-- cancellation). Repeats of a uuid share the sorting key, so merges collapse them and
-- queries read each uuid once (LIMIT 1 BY uuid) until then.
CREATE TABLE IF NOT EXISTS panalytics_subscriptions (
    user_id String,
    timestamp DateTime64(3, 'UTC'),
    uuid UUID,
    mrr Float64,
    tier LowCardinality(String)
) ENGINE = ReplacingMergeTree
ORDER BY (user_id, timestamp, uuid);

CREATE MATERIALIZED VIEW IF NOT EXISTS panalytics_subscriptions_mv TO panalytics_subscriptions AS
SELECT user_id, timestamp, uuid,
       if(event = 'subscription_cancelled', 0, JSONExtractFloat(properties, 'mrr')) AS mrr,
       if(event = 'subscription_cancelled', '', JSONExtractString(properties, 'tier')) AS tier
FROM events
WHERE event IN ('subscription_started', 'subscription_upgraded', 'subscription_downgraded',
                'subscription_cancelled');

-- Backfill from events stored before these views existed. Unconditional on purpose: rows
-- that arrive between creating a view and this insert land twice, which both rollups
-- tolerate (see above), whereas "only if empty" would skip the whole backfill then.
INSERT INTO panalytics_user_event_times
SELECT event, user_id, groupUniqArray(timestamp)
FROM events
GROUP BY event, user_id;

INSERT INTO panalytics_subscriptions
SELECT user_id, timestamp, uuid,
       if(event = 'subscription_cancelled', 0, JSONExtractFloat(properties, 'mrr')),
       if(event = 'subscription_cancelled', '', JSONExtractString(properties, 'tier'))
FROM events
WHERE event IN ('subscription_started', 'subscription_upgraded', 'subscription_downgraded',
                'subscription_cancelled')
  AND uuid NOT IN (SELECT uuid FROM panalytics_subscriptions);
