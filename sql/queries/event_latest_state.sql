-- The latest state of one event (staging) above every copy raw received of it.
-- Put your event's uuid in `target`, e.g.  SELECT 'a1b2…' AS event_uuid
-- As shipped it picks the event with the most copies, so it shows something on any lake
-- (that pick scans all of raw: on Athena, put a uuid in).
-- Runs as is on Athena and locally.
WITH target AS (
  SELECT event_uuid
  FROM raw
  GROUP BY event_uuid
  ORDER BY count(*) DESC, event_uuid
  LIMIT 1
)
SELECT
  'staging' AS source_table, s.event_uuid, s.event_name, s.created_datetime, s.ingested_at,
  s.payload
FROM staging s
JOIN target t ON s.event_uuid = t.event_uuid
UNION ALL
SELECT
  'raw' AS source_table, r.event_uuid, r.event_name, r.created_datetime, r.ingested_at,
  r.payload
FROM raw r
JOIN target t ON r.event_uuid = t.event_uuid
ORDER BY source_table DESC, created_datetime DESC;
