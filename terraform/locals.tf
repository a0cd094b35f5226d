locals {
  prefix = "${var.name}-${var.environment}"
  # Glue and Athena names: lower case, digits, underscores only.
  glue_database = replace(local.prefix, "-", "_")
  account_id    = data.aws_caller_identity.current.account_id
  partition     = data.aws_partition.current.partition
  region        = data.aws_region.current.name

  lake_bucket = "${local.prefix}-lake-${local.account_id}"
  lake_prefix = "events"
  lake_uri    = "s3://${local.lake_bucket}/${local.lake_prefix}"

  ingest_function  = "${local.prefix}-ingest"
  compact_function = "${local.prefix}-compact"
  commit_function  = "${local.prefix}-commit"
  grouped          = var.commit_mode == "grouped"
}
