-- Identity (analytics/events/identity.py): the distinct ids an SDK's `$identify` or
-- `$create_alias` linked to a person, one row per linked id (`user_id`: the anonymous or
-- alias id; `person_id`: the user id its events now belong to). A person id is never itself
-- linked, so one lookup resolves any id. The first link of an id wins (argMin on linked_at,
-- hence a plain MergeTree: nothing is replaced; a link recorded twice is read once);
-- the writer moves the linked id's events to the person, so every analysis reads the person.
CREATE TABLE IF NOT EXISTS person_distinct_ids (
    user_id String,
    person_id String,
    linked_at DateTime64(3, 'UTC'),
    source LowCardinality(String) DEFAULT ''
) ENGINE = MergeTree
ORDER BY user_id;
