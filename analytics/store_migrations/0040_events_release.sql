-- The version of the service that served an event: the `release` property, else the
-- `$app_version` property (PostHog's SDKs send it), else empty. Capture writes the mesh's
-- X-Served-By header into `release` when the event has no `release` of its own. Canary
-- judgements filter on it (users served by the canary vs by stable), so it is a column.
-- (Parts written before this migration compute it on read, with the same result.)
ALTER TABLE events ADD COLUMN IF NOT EXISTS release LowCardinality(String)
    MATERIALIZED if(JSONExtractString(properties, 'release') != '',
                    JSONExtractString(properties, 'release'),
                    JSONExtractString(properties, '$app_version'));
