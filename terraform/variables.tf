variable "environment" {
  description = "Environment name (dev, prod, …): prefixes every resource name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment: 2-10 lower-case letters and digits."
  }
}

variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the stack; resources are <name>-<environment>-<what>."
  type        = string
  default     = "lakehouse"
}

# --- Kinesis -----------------------------------------------------------------------------

variable "kinesis_stream_mode" {
  description = "ON_DEMAND (scales by itself, the default) or PROVISIONED (kinesis_shards)."
  type        = string
  default     = "ON_DEMAND"
  validation {
    condition     = contains(["ON_DEMAND", "PROVISIONED"], var.kinesis_stream_mode)
    error_message = "kinesis_stream_mode: ON_DEMAND or PROVISIONED."
  }
}

variable "kinesis_shards" {
  description = "Shards when PROVISIONED (1 MB/s or 1,000 records/s in per shard)."
  type        = number
  default     = 2
}

variable "kinesis_retention_hours" {
  description = "How long records stay on the stream: the window to fix a stuck consumer."
  type        = number
  default     = 168
}

# --- ingest Lambda -------------------------------------------------------------------------

variable "ingest_memory_mb" {
  type    = number
  default = 1024
}

variable "ingest_timeout_seconds" {
  type    = number
  default = 120
}

variable "batch_size" {
  description = "Records per invocation at most (one Delta commit per table each)."
  type        = number
  default     = 1000
}

variable "batching_window_seconds" {
  description = "Wait up to this long to fill a batch: fewer, larger commits and files."
  type        = number
  default     = 30
}

# --- commit mode (docs/scaling.md) -------------------------------------------------------

variable "commit_mode" {
  description = "direct: every ingest invocation commits its batch (a few commits/s per table at most); grouped: ingest hands manifests to a DynamoDB table whose stream invokes one committer, which lands many batches per commit."
  type        = string
  default     = "direct"
  validation {
    condition     = contains(["direct", "grouped"], var.commit_mode)
    error_message = "commit_mode must be direct or grouped."
  }
}

variable "raw_layout" {
  description = "How raw is partitioned when first created: date-type (event_date, event_type) or date (event_date only: one file per batch and day, for volume). An existing raw keeps its own; staging keeps date and type."
  type        = string
  default     = "date-type"
  validation {
    condition     = contains(["date-type", "date"], var.raw_layout)
    error_message = "raw_layout must be date-type or date."
  }
}

variable "commit_batching_window_seconds" {
  description = "Grouped mode: the committer gathers manifests this long (one commit per table per invocation)."
  type        = number
  default     = 2
}

variable "commit_memory_mb" {
  type    = number
  default = 1024
}

variable "commit_timeout_seconds" {
  type    = number
  default = 120
}

# --- compaction Lambda -------------------------------------------------------------------

variable "typed_tables" {
  description = "Keep one typed Delta table per event type (docs/catalog.md), mirrored from staging by every compaction"
  type        = bool
  default     = true
}

variable "compact_schedule" {
  description = "EventBridge schedule of the compaction Lambda."
  type        = string
  default     = "rate(15 minutes)"
}

variable "compact_ranges" {
  description = "Compaction runs per schedule, each over its own range (compact_split) and under its own lease (1: one run over the whole table). Range 0 also maintains the tables and syncs Glue."
  type        = number
  default     = 1
  validation {
    condition     = var.compact_ranges >= 1 && var.compact_ranges <= 64 && floor(var.compact_ranges) == var.compact_ranges
    error_message = "compact_ranges must be a whole number from 1 to 64 (a power of two with compact_split = \"keys\")."
  }
}

variable "compact_split" {
  description = "What compaction ranges split: \"keys\" (every copy of an event in one range, each reading 1/N of the key index; each reads all new raw rows) or \"types\" (ranges read only their types' raw files, but an event staged under two types keeps a row in each until the sweep)."
  type        = string
  default     = "keys"
  validation {
    condition     = contains(["keys", "types"], var.compact_split)
    error_message = "compact_split must be \"keys\" or \"types\"."
  }
}

variable "compact_memory_mb" {
  type    = number
  default = 3008
}

variable "compact_timeout_seconds" {
  description = "At most 900; the lease lasts longer (LAKEHOUSE_LEASE_SECONDS 960)."
  type        = number
  default     = 900
}

variable "horizon_days" {
  description = "Empty: compaction finds older copies through the key index, of any age. A number of days: it searches staging by date within that many days instead (0: all), and copies further apart may both stay."
  type        = string
  default     = ""
}

variable "hot_hours" {
  description = "Empty: compaction looks up every run of the key index, so a copy of any age is resolved by the round that merges it. A number of hours: only runs indexed within that window, so a round costs what the window holds; older copies stay until `lakehouse keys sweep`."
  type        = string
  default     = ""
}

variable "sweep_schedule" {
  description = "When the sweep state machine runs (an EventBridge schedule expression; empty: never on its own). Each run resolves every copy staged before it started, so this bounds how long a copy left by --hot-hours, --horizon-days or type ranges stays."
  type        = string
  default     = "rate(1 day)"
}

variable "keys_build_rows_per_chunk" {
  description = "The keys-build state machine: a chunk indexes the staging files of about this many rows, in one compaction Lambda invocation (3.8M rows a second measured on 2 vCPU, docs/benchmarks.md: ~30 s plus S3's reads for 100M)."
  type        = number
  default     = 100000000
}

variable "keys_build_chunks_per_plan" {
  description = "The keys-build state machine: chunks one plan lists (its map's items); it plans again until none is left."
  type        = number
  default     = 500
}

variable "keys_build_concurrency" {
  description = "The keys-build state machine: chunks indexed at once (compaction Lambda invocations)."
  type        = number
  default     = 64
}

variable "sweep_search" {
  description = "How the scheduled sweep finds copies: \"athena\" (the sweep state machine: Athena scans staging's event_uuid column, a cost that grows with staging) or \"index\" (the compaction Lambda with {\"sweep\": {\"by_index\": true}}: the rows staged since the last sweep, looked up in the key index; needs one earlier sweep and an index written since entries are kept per date, docs/dedup.md)."
  type        = string
  default     = "athena"
  validation {
    condition     = contains(["athena", "index"], var.sweep_search)
    error_message = "sweep_search must be \"athena\" or \"index\"."
  }
}

variable "recent_days" {
  description = "Staging partitions dated this many days before today or later keep files under recent_file_mb: a newer copy of a row rewrites its whole file."
  type        = number
  default     = 2
}

variable "recent_file_mb" {
  description = "The size (MiB) recent staging partitions' files stay under: what replacing one row there rewrites at most."
  type        = number
  default     = 16
  validation {
    condition     = var.recent_file_mb >= 1 && var.recent_file_mb <= 1024 && floor(var.recent_file_mb) == var.recent_file_mb
    error_message = "recent_file_mb must be a whole number from 1 to 1024 (the range of lakehouse compact --recent-file-mb)."
  }
}

variable "retention_hours" {
  description = "History vacuum keeps for time travel."
  type        = number
  default     = 168
}

# --- storage, query, operations ------------------------------------------------------------

variable "force_destroy" {
  description = "Let `make destroy` delete buckets that still hold data (dev only)."
  type        = bool
  default     = false
}

variable "athena_bytes_scanned_cutoff" {
  description = "Athena stops a query of the workgroup after scanning this many bytes."
  type        = number
  default     = 107374182400 # 100 GiB
}

variable "athena_results_days" {
  description = "Days Athena query results are kept."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alarm topic (each confirms by mail)."
  type        = list(string)
  default     = []
}

variable "iterator_age_alarm_seconds" {
  description = "Alarm when the ingest Lambda falls this far behind the stream."
  type        = number
  default     = 900
}

variable "quarantine_rate_alarm_percent" {
  description = "Alarm when more than this share of records goes to quarantine (15 min)."
  type        = number
  default     = 5
}

variable "lambda_zip_dir" {
  description = "Where `make lambdas` put the zips (<dir>/<binary>/bootstrap.zip)."
  type        = string
  default     = "../target/lambda"
}

variable "erasure_schedule" {
  description = "When the compaction Lambda processes the erasure requests waiting in the lake (an EventBridge schedule expression; empty: never on its own). docs/erasure.md."
  type        = string
  default     = "rate(1 hour)"
}

variable "erasure_deadline_hours" {
  description = "An erasure request waiting longer than this raises the erasure-overdue alarm. The law allows a month; the schedule erases within the hour, so a day means something is wrong."
  type        = number
  default     = 24
  validation {
    condition     = var.erasure_deadline_hours >= 1
    error_message = "erasure_deadline_hours must be at least 1."
  }
}

variable "erasure_key" {
  description = "The key of the erasure receipts' subject hashes (LAKEHOUSE_ERASURE_KEY, at least 16 bytes). Empty: the lake's own key at <lake>/_lakehouse/erasure.key, readable by whoever reads the lake."
  type        = string
  default     = ""
  sensitive   = true
  validation {
    condition     = var.erasure_key == "" || length(var.erasure_key) >= 16
    error_message = "erasure_key must be empty or have at least 16 characters."
  }
}

variable "ingest_max_record_bytes" {
  description = "Empty: 1048576. A record longer than this many bytes is quarantined as too large, with its first 4 KiB (lakehouse ingest --max-record-bytes)."
  type        = string
  default     = ""
}

variable "ingest_buffer_mb" {
  description = "Empty: 96. MiB of rows each table holds before writing files: the ingest function's memory for rows (lakehouse ingest --buffer-mb). Keep it well under ingest_memory_mb."
  type        = string
  default     = ""
}
