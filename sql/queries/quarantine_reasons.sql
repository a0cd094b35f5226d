-- Quarantine reasons over time: rejected records per ingest day and kind of reason (the
-- reason up to its first colon), with one full reason as an example.
-- Runs as is on Athena and locally.
SELECT
  ingest_date,
  split_part(error, ':', 1) AS reason,
  count(*) AS records,
  min(error) AS example
FROM quarantine
GROUP BY ingest_date, split_part(error, ':', 1)
ORDER BY ingest_date DESC, records DESC;
