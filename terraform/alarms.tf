resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic encrypted with the AWS managed key (its policy does not admit cloudwatch.amazonaws.com); alarm messages carry names and counts, no data
  name = "${local.prefix}-alarms"
}

resource "aws_sns_topic_subscription" "alarm_emails" {
  for_each  = toset(var.alarm_emails)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]
}

# Ingest falling behind the stream: the oldest record of the last batch is this old.
resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  alarm_name          = "${local.ingest_function}-iterator-age"
  alarm_description   = "The ingest Lambda is more than ${var.iterator_age_alarm_seconds} s behind the stream: records may expire from it."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = local.ingest_function }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.iterator_age_alarm_seconds * 1000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each            = local.functions
  alarm_name          = "${each.value.name}-errors"
  alarm_description   = "${each.value.name} returned errors (a batch retried, or a compaction or Glue sync failed)."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = each.key == "ingest" ? 3 : 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Grouped mode: the committer falling behind the manifest stream means batches handed over
# are not in the tables yet (commit lag).
resource "aws_cloudwatch_metric_alarm" "commit_lag" {
  count               = local.grouped ? 1 : 0
  alarm_name          = "${local.commit_function}-iterator-age"
  alarm_description   = "The committer is more than ${var.iterator_age_alarm_seconds} s behind the manifests handed over: batches are written but not yet in raw."
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = local.commit_function }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 3
  threshold           = var.iterator_age_alarm_seconds * 1000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Batches reported failed record by record (not Lambda errors): the EMF metric.
resource "aws_cloudwatch_metric_alarm" "failed_shards" {
  alarm_name          = "${local.ingest_function}-failed-batches"
  alarm_description   = "Ingest reported batches failed (S3, DynamoDB or commit trouble); Lambda retries them."
  namespace           = "Lakehouse"
  metric_name         = "FailedShards"
  dimensions          = { Function = local.ingest_function }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each            = aws_sqs_queue.failed
  alarm_name          = "${each.value.name}-not-empty"
  alarm_description   = "Something landed in ${each.value.name}: records or a compaction run were given up on. Nothing is lost from the lake's view yet, but a human must look."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}

# Share of user records that went to quarantine, from the ingest Lambda's EMF metrics.
resource "aws_cloudwatch_metric_alarm" "quarantine_rate" {
  alarm_name          = "${local.ingest_function}-quarantine-rate"
  alarm_description   = "More than ${var.quarantine_rate_alarm_percent}% of records were quarantined: a producer is sending bad events."
  evaluation_periods  = 3
  threshold           = var.quarantine_rate_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(records > 0, 100 * quarantined / records, 0)"
    label       = "quarantined %"
    return_data = true
  }
  metric_query {
    id = "quarantined"
    metric {
      namespace   = "Lakehouse"
      metric_name = "Quarantined"
      dimensions  = { Function = local.ingest_function }
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "records"
    metric {
      namespace   = "Lakehouse"
      metric_name = "UserRecords"
      dimensions  = { Function = local.ingest_function }
      stat        = "Sum"
      period      = 300
    }
  }
}
