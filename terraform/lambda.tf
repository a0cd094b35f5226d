# The Lambdas: the zips of `make lambdas` (arm64, provided.al2023). The committer runs in
# grouped mode only (its event source mapping exists then); it is deployed in both so that
# the mode is one variable.

locals {
  lambda_common_env = {
    LAKEHOUSE_LAKE       = local.lake_uri
    LAKEHOUSE_LOG        = "info"
    LAKEHOUSE_RAW_LAYOUT = var.raw_layout # whichever function creates raw first uses it
  }
  functions = {
    ingest = {
      name        = local.ingest_function
      binary      = "lakehouse-ingest-lambda"
      memory      = var.ingest_memory_mb
      timeout     = var.ingest_timeout_seconds
      description = "Kinesis batches into the raw and quarantine Delta tables, exactly once per shard"
      environment = merge(local.lambda_common_env, {
        LAKEHOUSE_COMMIT_MODE      = var.commit_mode
        LAKEHOUSE_CHECKPOINT_TABLE = aws_dynamodb_table.state["checkpoints"].name
        LAKEHOUSE_MANIFEST_TABLE   = aws_dynamodb_table.manifests.name
        LAKEHOUSE_MAX_RECORD_BYTES = var.ingest_max_record_bytes
        LAKEHOUSE_BUFFER_MB        = var.ingest_buffer_mb
      })
    }
    commit = {
      name        = local.commit_function
      binary      = "lakehouse-commit-lambda"
      memory      = var.commit_memory_mb
      timeout     = var.commit_timeout_seconds
      description = "Grouped mode: lands the batches ingest handed over, many per Delta commit, one table commit per invocation"
      environment = merge(local.lambda_common_env, {
        LAKEHOUSE_MANIFEST_TABLE = aws_dynamodb_table.manifests.name
        LAKEHOUSE_COMMIT_TABLES  = "raw,quarantine"
        # The ingest options (ingest's code, which this function links): unused by a
        # committer, set alike so that one definition holds for every function.
        LAKEHOUSE_MAX_RECORD_BYTES = var.ingest_max_record_bytes
        LAKEHOUSE_BUFFER_MB        = var.ingest_buffer_mb
      })
    }
    compact = {
      name        = local.compact_function
      binary      = "lakehouse-compact-lambda"
      memory      = var.compact_memory_mb
      timeout     = var.compact_timeout_seconds
      description = "Dedup raw into staging, optimize, vacuum; syncs Glue"
      environment = merge(local.lambda_common_env, {
        LAKEHOUSE_LEASE_TABLE      = aws_dynamodb_table.state["leases"].name
        LAKEHOUSE_LEASE_SECONDS    = tostring(var.compact_timeout_seconds + 60)
        LAKEHOUSE_HORIZON_DAYS     = var.horizon_days
        LAKEHOUSE_HOT_HOURS        = var.hot_hours
        LAKEHOUSE_RECENT_DAYS      = tostring(var.recent_days)
        LAKEHOUSE_RECENT_FILE_MB   = tostring(var.recent_file_mb)
        LAKEHOUSE_RETENTION_HOURS  = tostring(var.retention_hours)
        LAKEHOUSE_SKIP_MAINTENANCE = "false"
        LAKEHOUSE_SKIP_TYPED       = tostring(!var.typed_tables)
        LAKEHOUSE_VACUUM_FULL      = "false" # lists the whole table: `lakehouse compact --vacuum-full` by hand
        LAKEHOUSE_GLUE_DATABASE    = aws_glue_catalog_database.lake.name
        }, var.erasure_key == "" ? {} : {
        LAKEHOUSE_ERASURE_KEY = var.erasure_key
      })
    }
  }
}

resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_158:Logs hold no secrets or event payloads (counts and errors); the service key encrypts them
  #checkov:skip=CKV_AWS_338:Retention is a variable (30 days by default); a year of operational logs is not needed
  for_each          = local.functions
  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:Needs no VPC: it talks only to AWS APIs (S3, DynamoDB, Glue, Kinesis)
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile per organisation; the zip hash is pinned by source_code_hash
  #checkov:skip=CKV_AWS_173:Environment holds names only (bucket, tables, database), no secrets
  #checkov:skip=CKV_AWS_115:Ingest concurrency follows the shard count (one batch per shard); compaction serialises through its lease
  for_each      = local.functions
  function_name = each.value.name
  description   = each.value.description
  role          = aws_iam_role.lambda[each.key].arn
  runtime       = "provided.al2023"
  architectures = ["arm64"]
  handler       = "bootstrap"
  filename      = "${var.lambda_zip_dir}/${each.value.binary}/bootstrap.zip"
  # try(): `make destroy` needs no zips; creating or updating the function still reads the
  # file named above and fails clearly without it (`make plan` builds them first).
  source_code_hash = try(filebase64sha256("${var.lambda_zip_dir}/${each.value.binary}/bootstrap.zip"), null)
  memory_size      = each.value.memory
  timeout          = each.value.timeout
  # One committer: two would only fail each other's commits (docs/guarantees.md).
  reserved_concurrent_executions = each.key == "commit" ? 1 : -1

  environment {
    variables = each.value.environment
  }

  tracing_config {
    mode = "Active"
  }

  # Only the compaction Lambda is invoked asynchronously (by the schedule): its failed
  # invocations land here. Stream batches have their own on-failure destination.
  dynamic "dead_letter_config" {
    for_each = each.key == "compact" ? [1] : []
    content {
      target_arn = aws_sqs_queue.failed["compact"].arn
    }
  }

  logging_config {
    log_format = "Text" # our binaries already write JSON lines (and EMF)
    log_group  = aws_cloudwatch_log_group.lambda[each.key].name
  }

  depends_on = [aws_iam_role_policy.lambda]
}

# Kinesis -> ingest Lambda. ParallelizationFactor 1 and ReportBatchItemFailures are what
# exactly-once per shard relies on (see README, "Exactly once, in plain words").
resource "aws_lambda_event_source_mapping" "ingest" {
  event_source_arn                   = aws_kinesis_stream.events.arn
  function_name                      = aws_lambda_function.this["ingest"].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.batching_window_seconds
  parallelization_factor             = 1
  bisect_batch_on_function_error     = true
  # A failing batch is retried until it lands, in every environment: after a last retry
  # Lambda would move the shard on past records that never reached the lake, and the
  # on-failure queue keeps only their metadata. The IteratorAge alarm says it is stuck.
  maximum_retry_attempts        = -1
  maximum_record_age_in_seconds = -1
  function_response_types       = ["ReportBatchItemFailures"]

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.failed["ingest"].arn
    }
  }
}

# Grouped mode: the manifest table's stream -> the committer. Only new items (not the
# committer's own deletes); a failing batch blocks its stream shard and is retried until it
# lands, as the Kinesis mapping does. The function answers with its report, not item
# failures: an error fails the whole batch, and a retry commits only what is missing.
resource "aws_lambda_event_source_mapping" "commit" {
  count                              = local.grouped ? 1 : 0
  event_source_arn                   = aws_dynamodb_table.manifests.stream_arn
  function_name                      = aws_lambda_function.this["commit"].arn
  starting_position                  = "TRIM_HORIZON"
  batch_size                         = 1000
  maximum_batching_window_in_seconds = var.commit_batching_window_seconds
  parallelization_factor             = 1
  maximum_retry_attempts             = -1
  maximum_record_age_in_seconds      = -1
  function_response_types            = ["ReportBatchItemFailures"]

  filter_criteria {
    filter {
      pattern = jsonencode({ eventName = ["INSERT"] })
    }
  }

  destination_config {
    on_failure {
      destination_arn = aws_sqs_queue.failed["commit"].arn
    }
  }
}

# Records (well, their shard positions) the ingest Lambda or the committer gave up on, and
# compaction invocations that failed: they wait here for a human, and alarm.
resource "aws_sqs_queue" "failed" {
  for_each                  = toset(["ingest", "compact", "commit"])
  name                      = "${local.prefix}-${each.key}-failed"
  message_retention_seconds = 1209600 # 14 days, the maximum
  sqs_managed_sse_enabled   = true
}

# The compaction schedule: one run over the whole table, or (compact_ranges > 1) one
# schedule per range of keys (or of event types: compact_split), each run under its own
# lease (docs/scaling.md).
locals {
  compact_runs = var.compact_ranges == 1 ? { all = null } : {
    for i in range(var.compact_ranges) : "${var.compact_split}-${i}" => jsonencode({ (var.compact_split) = "${i}/${var.compact_ranges}" })
  }
}

resource "aws_cloudwatch_event_rule" "compact" {
  for_each            = local.compact_runs
  name                = each.value == null ? "${local.prefix}-compact" : "${local.prefix}-compact-${each.key}"
  description         = "Runs the compaction Lambda"
  schedule_expression = var.compact_schedule
  lifecycle {
    # Key ranges hold whole buckets of the key index (a variable's validation may not
    # read another variable before Terraform 1.9).
    precondition {
      condition     = var.compact_split == "types" || contains([1, 2, 4, 8, 16, 32, 64], var.compact_ranges)
      error_message = "compact_ranges must be a power of two from 1 to 64 with compact_split = \"keys\"."
    }
  }
}

resource "aws_cloudwatch_event_target" "compact" {
  for_each = local.compact_runs
  rule     = aws_cloudwatch_event_rule.compact[each.key].name
  arn      = aws_lambda_function.this["compact"].arn
  input    = each.value
}

resource "aws_lambda_permission" "compact_schedule" {
  for_each      = local.compact_runs
  statement_id  = each.key == "all" ? "AllowEventBridgeSchedule" : "AllowEventBridgeSchedule-${each.key}"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["compact"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.compact[each.key].arn
}

# The single schedule of earlier versions is the "all" run now: moved, not recreated.
moved {
  from = aws_cloudwatch_event_rule.compact
  to   = aws_cloudwatch_event_rule.compact["all"]
}

moved {
  from = aws_cloudwatch_event_target.compact
  to   = aws_cloudwatch_event_target.compact["all"]
}

moved {
  from = aws_lambda_permission.compact_schedule
  to   = aws_lambda_permission.compact_schedule["all"]
}
