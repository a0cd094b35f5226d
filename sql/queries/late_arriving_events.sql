-- Late-arriving events: how long after created_at they were ingested, per event day.
-- Late events change past days' numbers: this says how far back reports must look.
-- Runs as is on Athena and locally (to_unixtime exists in both).
SELECT
  event_date,
  count(*) AS events,
  sum(CASE WHEN to_unixtime(ingested_at) - created_at > 3600 THEN 1 ELSE 0 END)
    AS later_than_1h,
  sum(CASE WHEN to_unixtime(ingested_at) - created_at > 86400 THEN 1 ELSE 0 END)
    AS later_than_1d,
  round(max(to_unixtime(ingested_at) - created_at) / 3600.0, 1) AS max_delay_hours
FROM raw
GROUP BY event_date
ORDER BY event_date DESC;
