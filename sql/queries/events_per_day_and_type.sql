-- Events per day and type: distinct events (staging) and rows received (raw).
-- Runs as is on Athena and locally: lakehouse query --lake … --file sql/queries/events_per_day_and_type.sql
WITH received AS (
  SELECT event_date, event_type, count(*) AS raw_rows
  FROM raw
  GROUP BY event_date, event_type
),
distinct_events AS (
  SELECT event_date, event_type, count(*) AS events
  FROM staging
  GROUP BY event_date, event_type
)
SELECT
  r.event_date,
  r.event_type,
  COALESCE(d.events, 0) AS events,
  r.raw_rows
FROM received r
LEFT JOIN distinct_events d
  ON d.event_date = r.event_date AND d.event_type = r.event_type
ORDER BY r.event_date DESC, events DESC, r.event_type
LIMIT 1000;
