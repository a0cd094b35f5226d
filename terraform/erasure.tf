# Erasure requests (docs/erasure.md): an hourly run of the compaction Lambda with
# {"erase": {}} processes every request waiting under <lake>/_lakehouse/erasure-requests/,
# and an alarm fires when one has waited longer than its deadline.

resource "aws_cloudwatch_event_rule" "erasure" {
  count               = var.erasure_schedule == "" ? 0 : 1
  name                = "${local.prefix}-erasure"
  description         = "Processes the erasure requests waiting in the lake"
  schedule_expression = var.erasure_schedule
}

resource "aws_cloudwatch_event_target" "erasure" {
  count = var.erasure_schedule == "" ? 0 : 1
  rule  = aws_cloudwatch_event_rule.erasure[0].name
  arn   = aws_lambda_function.this["compact"].arn
  input = jsonencode({ erase = {} })
}

resource "aws_lambda_permission" "erasure_schedule" {
  count         = var.erasure_schedule == "" ? 0 : 1
  statement_id  = "AllowEventBridgeErasure"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["compact"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.erasure[0].arn
}

# The Lambda reports the oldest waiting request's age before it processes the queue, so a
# request that keeps failing keeps aging here. No data (no run) is not a breach: the
# function's Errors alarm covers runs that fail.
resource "aws_cloudwatch_metric_alarm" "erasure_overdue" {
  alarm_name          = "${local.prefix}-erasure-overdue"
  alarm_description   = "An erasure request has waited more than ${var.erasure_deadline_hours} h: see docs/operations.md, Erasure requests."
  namespace           = "Lakehouse"
  metric_name         = "ErasureOldestPendingSeconds"
  dimensions          = { Function = local.compact_function }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = var.erasure_deadline_hours * 3600
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
