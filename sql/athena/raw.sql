-- raw: every valid event as received, append-only; partitioned by event_date, event_type
-- (or by event_date only when created with raw layout `date`: the same DDL reads either).
-- Replace the bucket and prefix with your lake's (LAKEHOUSE_LAKE). Athena reads the schema
-- and partitions from the Delta log: no columns, no PARTITIONED BY, no MSCK REPAIR.
-- Athena copies the schema into Glue once, here; when the Delta schema later gains a column
-- Glue lags until `lakehouse catalog sync` runs (the compaction Lambda runs it every time).
CREATE EXTERNAL TABLE IF NOT EXISTS events.raw
LOCATION 's3://YOUR-BUCKET/events/raw/'
TBLPROPERTIES ('table_type' = 'DELTA');
