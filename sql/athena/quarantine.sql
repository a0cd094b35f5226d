-- quarantine: every rejected record, byte for byte, with the reason; partitioned by ingest_date.
-- Replace the bucket and prefix with your lake's (LAKEHOUSE_LAKE). Athena reads the schema
-- and partitions from the Delta log: no columns, no PARTITIONED BY, no MSCK REPAIR.
-- Athena copies the schema into Glue once, here; when the Delta schema later gains a column
-- Glue lags until `lakehouse catalog sync` runs (the compaction Lambda runs it every time).
CREATE EXTERNAL TABLE IF NOT EXISTS events.quarantine
LOCATION 's3://YOUR-BUCKET/events/quarantine/'
TBLPROPERTIES ('table_type' = 'DELTA');
