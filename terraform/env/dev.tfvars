environment                 = "dev"
region                      = "eu-west-1"
kinesis_stream_mode         = "ON_DEMAND"
batching_window_seconds     = 5
compact_schedule            = "rate(30 minutes)"
compact_memory_mb           = 2048
log_retention_days          = 7
force_destroy               = true        # dev data is disposable: `make destroy ENV=dev` empties the buckets
athena_bytes_scanned_cutoff = 10737418240 # 10 GiB
commit_mode                 = "direct"    # "grouped" beyond a few commits/s per table: docs/scaling.md
