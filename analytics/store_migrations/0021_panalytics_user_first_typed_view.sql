-- The first-event view as 0010 now writes it (argMin key CAST to an unnamed tuple), for stores
-- that applied 0010 before that fix: their view builds a named tuple, and every insert into
-- events fails (CANNOT_CONVERT_TYPE) on a server where enable_named_columns_in_function_tuple
-- is 1: the default of 24.8 LTS, so a store migrated on an older server and upgraded to 24.8,
-- or any server whose profile sets it. The new view is created before the old one is dropped,
-- so no insert goes unseen; an insert in between is counted by both, which min and argMin
-- ignore (see 0010).
CREATE MATERIALIZED VIEW IF NOT EXISTS panalytics_user_first_typed_mv TO panalytics_user_first AS
SELECT event, user_id, min(timestamp) AS first_ts,
       argMinState(properties, CAST((timestamp, properties) AS Tuple(DateTime64(3, 'UTC'), String)))
           AS first_props
FROM events
GROUP BY event, user_id;

DROP VIEW IF EXISTS panalytics_user_first_mv;
