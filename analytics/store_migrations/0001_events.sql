-- Raw product events and the users dimension. Same SQL on chdb and a ClickHouse server.
-- Duplicates of one uuid share the sorting key, so ReplacingMergeTree collapses them on merge;
-- until then queries must count each uuid once (FINAL, or uniqExact(uuid) / LIMIT 1 BY uuid).
CREATE TABLE IF NOT EXISTS events (
    uuid UUID,
    event LowCardinality(String),
    user_id String,
    timestamp DateTime64(3, 'UTC'),
    properties String CODEC(ZSTD(3)),
    session_id String DEFAULT '',
    page_url String DEFAULT '',
    user_agent String DEFAULT '',
    ip String DEFAULT '',
    received_at DateTime64(3, 'UTC') DEFAULT now64(3),
    user_tier LowCardinality(String) MATERIALIZED JSONExtractString(properties, 'user_tier'),
    device_type LowCardinality(String) MATERIALIZED JSONExtractString(properties, 'device_type'),
    is_mobile UInt8 MATERIALIZED JSONExtractBool(properties, 'is_mobile'),
    country LowCardinality(String) MATERIALIZED JSONExtractString(properties, 'geo_country'),
    video_style LowCardinality(String) MATERIALIZED JSONExtractString(properties, 'video_style')
) ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (event, toDate(timestamp), user_id, uuid);

CREATE TABLE IF NOT EXISTS users (
    user_id String,
    signup_at DateTime64(3, 'UTC'),
    tier LowCardinality(String) DEFAULT 'free',
    country LowCardinality(String) DEFAULT '',
    signup_source LowCardinality(String) DEFAULT '',
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = ReplacingMergeTree(updated_at)
ORDER BY user_id;
