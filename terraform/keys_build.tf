# The key index's build at scale (docs/dedup.md, "Rebuilds"): a build indexes staging's live
# files at one version in chunks, each an exactly-once commit, so chunks run at once. This
# state machine fans them out over the compaction Lambda; start it by hand (or after a
# restore) when an index is missing for a large staging. Compactions meanwhile go on with
# the build themselves, so it is never needed for correctness, only for speed.
#
#   Plan    {"keys_build": {"plan": true, …}}  -> as_of, up to keys_build_chunks_per_plan
#                                                chunks, more
#   Chunks  a distributed map: {"keys_build": {"as_of": V, "from": A, "to": B}} each, at most
#           keys_build_concurrency at once; then Plan again while chunks remain
#   Finish  {"keys_build": {"finish": true}}   -> records the build, indexes what came since
#
# Every step is safe to retry: a plan starts a build only once, a chunk commits once.

resource "aws_cloudwatch_log_group" "keys_build" {
  #checkov:skip=CKV_AWS_158:Logs hold no secrets or event payloads (versions, counts and errors); the service key encrypts them
  #checkov:skip=CKV_AWS_338:Retention is a variable (30 days by default); a year of operational logs is not needed
  name              = "/aws/vendedlogs/states/${local.prefix}-keys-build"
  retention_in_days = var.log_retention_days
}

resource "aws_sfn_state_machine" "keys_build" {
  name     = "${local.prefix}-keys-build"
  role_arn = aws_iam_role.keys_build.arn

  definition = jsonencode({
    Comment = "Builds the key index in chunks that compaction Lambdas index at once"
    StartAt = "Plan"
    States = {
      Plan = {
        Type     = "Task"
        Resource = "arn:${local.partition}:states:::lambda:invoke"
        Parameters = {
          FunctionName = aws_lambda_function.this["compact"].arn
          Payload = { keys_build = {
            plan           = true
            rows_per_chunk = var.keys_build_rows_per_chunk
            max_chunks     = var.keys_build_chunks_per_plan
          } }
        }
        ResultSelector = {
          "as_of.$"  = "$.Payload.as_of"
          "chunks.$" = "$.Payload.chunks"
        }
        ResultPath = "$.plan"
        Retry      = local.lambda_retry
        Next       = "AnyChunks"
      }
      AnyChunks = {
        Type    = "Choice"
        Choices = [{ Variable = "$.plan.chunks[0]", IsPresent = true, Next = "Chunks" }]
        Default = "Finish"
      }
      Chunks = {
        Type           = "Map"
        ItemsPath      = "$.plan.chunks"
        MaxConcurrency = var.keys_build_concurrency
        ItemSelector = {
          "as_of.$" = "$.plan.as_of"
          "from.$"  = "$$.Map.Item.Value.from"
          "to.$"    = "$$.Map.Item.Value.to"
        }
        ItemProcessor = {
          ProcessorConfig = { Mode = "DISTRIBUTED", ExecutionType = "STANDARD" }
          StartAt         = "Chunk"
          States = {
            Chunk = {
              Type     = "Task"
              Resource = "arn:${local.partition}:states:::lambda:invoke"
              Parameters = {
                FunctionName = aws_lambda_function.this["compact"].arn
                Payload      = { "keys_build.$" = "$" }
              }
              ResultSelector = { "outcome.$" = "$.Payload.outcome" }
              Retry = concat(local.lambda_retry, [{
                ErrorEquals     = ["States.ALL"]
                IntervalSeconds = 30
                MaxAttempts     = 3
                BackoffRate     = 2
              }])
              End = true
            }
          }
        }
        ResultPath = null
        Next       = "Plan"
      }
      Finish = {
        Type     = "Task"
        Resource = "arn:${local.partition}:states:::lambda:invoke"
        Parameters = {
          FunctionName = aws_lambda_function.this["compact"].arn
          Payload      = { keys_build = { finish = true } }
        }
        ResultSelector = { "indexed.$" = "$.Payload.update.indexed" }
        Retry          = local.lambda_retry
        End            = true
      }
    }
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.keys_build.arn}:*"
    include_execution_data = true # versions, file numbers, counts: no event data
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }
}

resource "aws_iam_role" "keys_build" {
  name               = "${local.prefix}-keys-build"
  assume_role_policy = data.aws_iam_policy_document.states_assume.json
}

# What the state machine needs: invoke the compaction Lambda, and run its distributed map's
# child executions.
data "aws_iam_policy_document" "keys_build" {
  source_policy_documents = [data.aws_iam_policy_document.states_logs_and_tracing.json]
  statement {
    sid       = "InvokeCompaction"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.this["compact"].arn]
  }
  # A distributed map runs each item as a child execution of this state machine.
  statement {
    sid       = "StartTheMapsChildren"
    actions   = ["states:StartExecution"]
    resources = ["arn:${local.partition}:states:${local.region}:${local.account_id}:stateMachine:${local.prefix}-keys-build"]
  }
  statement {
    sid       = "FollowTheMapsChildren"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = ["arn:${local.partition}:states:${local.region}:${local.account_id}:execution:${local.prefix}-keys-build/*"]
  }
}

resource "aws_iam_role_policy" "keys_build" {
  name   = "keys-build"
  role   = aws_iam_role.keys_build.id
  policy = data.aws_iam_policy_document.keys_build.json
}

resource "aws_cloudwatch_metric_alarm" "keys_build_failed" {
  alarm_name          = "${local.prefix}-keys-build-failed"
  alarm_description   = "The keys-build state machine failed: compactions go on with the build themselves, one chunk after another (docs/operations.md, runbook)."
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  dimensions          = { StateMachineArn = aws_sfn_state_machine.keys_build.arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
