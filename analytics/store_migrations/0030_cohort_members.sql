-- Saved cohorts' members (analytics/cohorts): one row per member of one computed version of a
-- cohort, so analyses join them in the store (`user_id IN (...)`) instead of passing lists.
-- A cohort's served version is kept in the relational database; older versions are deleted
-- after a new one is written, so readers of the previous version are never left empty.
CREATE TABLE IF NOT EXISTS cohort_members (
    cohort_id UInt64,
    version UInt32,
    user_id String
) ENGINE = MergeTree
ORDER BY (cohort_id, version, user_id);
