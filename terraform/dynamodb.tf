# Shard checkpoints of the ingest Lambda and the compaction lease: one item per key `id`.
# Items carry `expires_at` (epoch seconds): a lease a day after it lapsed, a checkpoint
# 400 days after its last write (longer than Kinesis can keep a record, so no batch can be
# redelivered after its checkpoint is gone).
resource "aws_dynamodb_table" "state" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS owned key; a customer managed key adds cost and key management for two small state tables
  for_each = {
    checkpoints = "ingest shard checkpoints"
    leases      = "compaction lease"
  }
  name         = "${local.prefix}-${each.key}"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"

  attribute {
    name = "id"
    type = "S"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = !var.force_destroy

  tags = {
    Purpose = each.value
  }
}

# Grouped mode's manifests (docs/scaling.md): one item per (writer, version), written by the
# ingest Lambda with a conditional put (its checkpoint), read and swept by the committer,
# whose event source mapping reads the stream of keys. Empty, and costing nothing, in direct
# mode; it always exists so that switching modes is a variable, not a migration.
resource "aws_dynamodb_table" "manifests" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS owned key; the items are file lists, not event data
  name             = "${local.prefix}-manifests"
  billing_mode     = "PAY_PER_REQUEST"
  hash_key         = "writer"
  range_key        = "version"
  stream_enabled   = true
  stream_view_type = "KEYS_ONLY"

  attribute {
    name = "writer"
    type = "S"
  }

  attribute {
    name = "version"
    type = "N"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }

  deletion_protection_enabled = !var.force_destroy

  tags = {
    Purpose = "grouped-mode manifests"
  }
}
