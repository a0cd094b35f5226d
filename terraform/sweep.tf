# The sweep at scale (docs/dedup.md, "The sweep"): Athena finds every event staged more than
# once (sql/queries/duplicated_events.sql, scanning staging's event_uuid column), and the
# compaction Lambda rewrites only the partitions the result names. A state machine orders
# the three steps; a schedule (sweep_schedule, empty for none) starts it, which bounds how
# long a copy that a round did not search (hot window, date search, type ranges) stays.
#
#   Begin       {"sweep": {"begin": true}}    -> as_of: staging's version before the query
#   FindCopies  Athena, its own workgroup     -> the result's CSV in the results bucket
#   Sweep       {"sweep": {"candidates": <CSV>, "as_of": <as_of>}}
#
# Each step is safe to retry: Begin reads, the query writes a new result, and a sweep of a
# list already swept finds nothing to remove.

resource "aws_athena_workgroup" "sweep" {
  name          = "${local.prefix}-sweep"
  description   = "The sweep's query of ${local.prefix} staging (no scan limit: it reads every event_uuid)"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${aws_s3_bucket.athena_results.bucket}/${local.sweep_results}/"
      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }
}

locals {
  sweep_results = "sweep"
  lambda_retry = [{
    ErrorEquals     = ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"]
    IntervalSeconds = 5
    MaxAttempts     = 5
    BackoffRate     = 2
  }]
}

resource "aws_cloudwatch_log_group" "sweep" {
  #checkov:skip=CKV_AWS_158:Logs hold no secrets or event payloads (versions, counts and errors); the service key encrypts them
  #checkov:skip=CKV_AWS_338:Retention is a variable (30 days by default); a year of operational logs is not needed
  name              = "/aws/vendedlogs/states/${local.prefix}-sweep"
  retention_in_days = var.log_retention_days
}

resource "aws_sfn_state_machine" "sweep" {
  name     = "${local.prefix}-sweep"
  role_arn = aws_iam_role.sweep.arn

  definition = jsonencode({
    Comment = "Athena finds the events staged more than once; the compaction Lambda sweeps them"
    StartAt = "Begin"
    States = {
      Begin = {
        Type     = "Task"
        Resource = "arn:${local.partition}:states:::lambda:invoke"
        Parameters = {
          FunctionName = aws_lambda_function.this["compact"].arn
          Payload      = { sweep = { begin = true } }
        }
        ResultSelector = { "as_of.$" = "$.Payload.as_of" }
        ResultPath     = "$.begun"
        Retry          = local.lambda_retry
        Next           = "FindCopies"
      }
      FindCopies = {
        Type     = "Task"
        Resource = "arn:${local.partition}:states:::athena:startQueryExecution.sync"
        Parameters = {
          QueryString           = file("${path.module}/../sql/queries/duplicated_events.sql")
          WorkGroup             = aws_athena_workgroup.sweep.name
          QueryExecutionContext = { Database = aws_glue_catalog_database.lake.name }
        }
        ResultSelector = { "candidates.$" = "$.QueryExecution.ResultConfiguration.OutputLocation" }
        ResultPath     = "$.found"
        Retry = [{
          ErrorEquals     = ["States.ALL"]
          IntervalSeconds = 60
          MaxAttempts     = 2
          BackoffRate     = 2
        }]
        Next = "Sweep"
      }
      Sweep = {
        Type     = "Task"
        Resource = "arn:${local.partition}:states:::lambda:invoke"
        Parameters = {
          FunctionName = aws_lambda_function.this["compact"].arn
          Payload = { sweep = {
            "candidates.$" = "$.found.candidates"
            "as_of.$"      = "$.begun.as_of"
          } }
        }
        ResultSelector = { "report.$" = "$.Payload.report" }
        Retry          = local.lambda_retry
        End            = true
      }
    }
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.sweep.arn}:*"
    include_execution_data = true # versions, the result's location, counts: no event data
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }
}

data "aws_iam_policy_document" "states_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "sweep" {
  name               = "${local.prefix}-sweep"
  assume_role_policy = data.aws_iam_policy_document.states_assume.json
}

# What the state machine and Athena (which runs with the caller's rights) need: invoke the
# compaction Lambda, run the query, read staging through Glue, write the result.
data "aws_iam_policy_document" "sweep" {
  source_policy_documents = [data.aws_iam_policy_document.states_logs_and_tracing.json]
  statement {
    sid       = "InvokeCompaction"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["compact"].arn]
  }
  statement {
    sid       = "RunTheQuery"
    actions   = ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:StopQueryExecution"]
    resources = [aws_athena_workgroup.sweep.arn]
  }
  statement {
    sid     = "ReadTheCatalog"
    actions = ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"]
    resources = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      aws_glue_catalog_database.lake.arn,
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${aws_glue_catalog_database.lake.name}/*",
    ]
  }
  statement {
    sid       = "ReadStaging"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.lake.arn}/${local.lake_prefix}/staging/*"]
  }
  statement {
    sid       = "ListStaging"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.lake.arn]
  }
  statement {
    sid = "WriteTheResult"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.athena_results.arn}/${local.sweep_results}/*"]
  }
  statement {
    sid       = "ResultsBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.athena_results.arn]
  }
}

# What every state machine needs to log its executions and trace them.
data "aws_iam_policy_document" "states_logs_and_tracing" {
  statement {
    sid = "Logs"
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"] # CloudWatch Logs delivery actions have no resource-level permissions
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

resource "aws_iam_role_policy" "sweep" {
  name   = "sweep"
  role   = aws_iam_role.sweep.id
  policy = data.aws_iam_policy_document.sweep.json
}

# The schedule.
data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}

locals {
  # Which target the sweep's schedule starts: the state machine, or the Lambda directly.
  sweep_by_athena = var.sweep_schedule != "" && var.sweep_search == "athena" ? 1 : 0
  sweep_by_index  = var.sweep_schedule != "" && var.sweep_search == "index" ? 1 : 0
}

resource "aws_iam_role" "sweep_schedule" {
  count              = local.sweep_by_athena
  name               = "${local.prefix}-sweep-schedule"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
}

data "aws_iam_policy_document" "sweep_schedule" {
  statement {
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.sweep.arn]
  }
}

resource "aws_iam_role_policy" "sweep_schedule" {
  count  = local.sweep_by_athena
  name   = "start-sweep"
  role   = aws_iam_role.sweep_schedule[0].id
  policy = data.aws_iam_policy_document.sweep_schedule.json
}

resource "aws_cloudwatch_event_rule" "sweep" {
  count               = var.sweep_schedule == "" ? 0 : 1
  name                = "${local.prefix}-sweep"
  description         = "Starts the sweep (the state machine, or the compaction Lambda by the index)"
  schedule_expression = var.sweep_schedule
}

resource "aws_cloudwatch_event_target" "sweep" {
  count    = local.sweep_by_athena
  rule     = aws_cloudwatch_event_rule.sweep[0].name
  arn      = aws_sfn_state_machine.sweep.arn
  role_arn = aws_iam_role.sweep_schedule[0].arn
}

# sweep_search = "index": the compaction Lambda sweeps what arrived since the last sweep,
# found through the key index; its errors alarm as the Lambda's (…-compact-errors).
resource "aws_cloudwatch_event_target" "sweep_by_index" {
  count = local.sweep_by_index
  rule  = aws_cloudwatch_event_rule.sweep[0].name
  arn   = aws_lambda_function.this["compact"].arn
  input = jsonencode({ sweep = { by_index = true } })
}

resource "aws_lambda_permission" "sweep_by_index" {
  count         = local.sweep_by_index
  statement_id  = "AllowEventBridgeSweepByIndex"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["compact"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep[0].arn
}

# A sweep that failed (after its retries) or timed out: copies wait for the next one.
resource "aws_cloudwatch_metric_alarm" "sweep_failed" {
  alarm_name          = "${local.prefix}-sweep-failed"
  alarm_description   = "The sweep state machine failed: copies rounds left stay staged twice until a sweep succeeds (docs/operations.md, runbook)."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.sweep.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
