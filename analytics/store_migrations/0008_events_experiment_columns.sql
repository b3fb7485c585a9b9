-- Experiment exposures are read per experiment on every results computation; columns
-- materialized at insert spare parsing the JSON of millions of events on each read.
-- (Parts written before this migration compute them on read, with the same result.)
ALTER TABLE events ADD COLUMN IF NOT EXISTS experiment_id LowCardinality(String)
    MATERIALIZED JSONExtractString(properties, 'experiment_id');

ALTER TABLE events ADD COLUMN IF NOT EXISTS experiment_variant LowCardinality(String)
    MATERIALIZED JSONExtractString(properties, 'variant');
