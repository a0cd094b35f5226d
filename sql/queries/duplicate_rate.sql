-- Duplicate rate per day: rows raw received that staging does not keep (redeliveries and
-- superseded revisions). A revision moved to another day counts against its old day.
-- Runs as is on Athena and locally.
WITH received AS (
  SELECT event_date, count(*) AS raw_rows
  FROM raw
  GROUP BY event_date
),
kept AS (
  SELECT event_date, count(*) AS staging_rows
  FROM staging
  GROUP BY event_date
)
SELECT
  r.event_date,
  r.raw_rows,
  COALESCE(k.staging_rows, 0) AS staging_rows,
  r.raw_rows - COALESCE(k.staging_rows, 0) AS duplicates,
  round(100 * CAST(r.raw_rows - COALESCE(k.staging_rows, 0) AS double) / r.raw_rows, 2)
    AS duplicate_pct
FROM received r
LEFT JOIN kept k ON k.event_date = r.event_date
ORDER BY r.event_date DESC;
