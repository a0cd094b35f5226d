-- Events staged more than once: every copy's event_uuid and partition, or no rows when
-- staging holds one row per event_uuid. Copies are left by rounds that searched less than
-- the whole key index (--horizon-days, --hot-hours, a fan-out's type ranges).
-- Its CSV result is what `lakehouse keys sweep --candidates` (and the compaction Lambda's
-- {"sweep": {"candidates": …}} event) reads: the sweep then reads only the partitions named.
-- On Athena it scans staging's event_uuid column twice; `lakehouse keys sweep --sql` runs it
-- locally with DataFusion. Runs as is on Athena and locally.
SELECT event_uuid, event_date, event_type
FROM staging
WHERE event_uuid IN (
  SELECT event_uuid
  FROM staging
  GROUP BY event_uuid
  HAVING count(*) > 1
)
ORDER BY event_uuid, event_date, event_type;
