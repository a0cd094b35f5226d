resource "aws_kinesis_stream" "events" {
  name             = "${local.prefix}-events"
  shard_count      = var.kinesis_stream_mode == "PROVISIONED" ? var.kinesis_shards : null
  retention_period = var.kinesis_retention_hours
  encryption_type  = "KMS"
  kms_key_id       = "alias/aws/kinesis"
  # Per-shard iterator age, for the dashboard: a shard falling behind alone shows.
  shard_level_metrics = ["IteratorAgeMilliseconds"]

  stream_mode_details {
    stream_mode = var.kinesis_stream_mode
  }
}
