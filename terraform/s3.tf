# The lake: raw, staging and quarantine under s3://<bucket>/events/.
#
# Versioning is off on purpose: every Delta commit is already a version (time travel is
# the Delta log's job), and vacuum deletes files no version needs; with S3 versioning those
# deletes would keep every rewritten file forever (optimize rewrites all small files) and
# the lake would only grow. Point-in-time recovery of the data is the Delta history plus
# the stream's retention; back up the bucket with AWS Backup if you need more.
resource "aws_s3_bucket" "lake" {
  #checkov:skip=CKV_AWS_21:Versioning off by design: Delta keeps versions; S3 versions would keep every vacuumed file (see comment above)
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice per organisation, not a default
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket per organisation; CloudTrail data events are the usual choice
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications: readers use the Delta log
  #checkov:skip=CKV_AWS_145:SSE-S3, not SSE-KMS: KMS would bill a request per Parquet read of every query (see the encryption resource)
  bucket        = local.lake_bucket
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# SSE-S3 (AES256) encrypts every object; SSE-KMS would bill a KMS request per object read.
resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 2
    }
  }
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = data.aws_iam_policy_document.tls_only["lake"].json
  # The public access block must exist first, or a policy race can fail the apply.
  depends_on = [aws_s3_bucket_public_access_block.lake]
}

# Athena query results: its own bucket, so analysts never need write access to the lake.
resource "aws_s3_bucket" "athena_results" {
  #checkov:skip=CKV_AWS_21:Query results are disposable and expire; versions would only keep them longer
  #checkov:skip=CKV_AWS_144:Query results are disposable: no replication
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket per organisation
  #checkov:skip=CKV2_AWS_62:No consumer of event notifications for query results
  #checkov:skip=CKV_AWS_145:SSE-S3 suffices for disposable query results
  bucket        = "${local.prefix}-athena-results-${local.account_id}"
  force_destroy = true # results only: nothing to keep
}

resource "aws_s3_bucket_public_access_block" "athena_results" {
  bucket                  = aws_s3_bucket.athena_results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "athena_results" {
  bucket = aws_s3_bucket.athena_results.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "athena_results" {
  bucket = aws_s3_bucket.athena_results.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "athena_results" {
  bucket = aws_s3_bucket.athena_results.id
  rule {
    id     = "expire-results"
    status = "Enabled"
    filter {}
    expiration {
      days = var.athena_results_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_policy" "athena_results" {
  bucket     = aws_s3_bucket.athena_results.id
  policy     = data.aws_iam_policy_document.tls_only["athena_results"].json
  depends_on = [aws_s3_bucket_public_access_block.athena_results]
}

data "aws_iam_policy_document" "tls_only" {
  for_each = {
    lake           = aws_s3_bucket.lake.arn
    athena_results = aws_s3_bucket.athena_results.arn
  }
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value, "${each.value}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
