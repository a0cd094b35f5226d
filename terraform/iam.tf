# One role per Lambda, each allowed only the calls its code makes, on its own resources.
# tests/deploy/check_terraform.py compares these actions with the code's AWS calls.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  for_each           = local.functions
  name               = "${each.value.name}-lambda"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

locals {
  table_arns   = { for k, t in aws_dynamodb_table.state : k => t.arn }
  lake_objects = "${aws_s3_bucket.lake.arn}/${local.lake_prefix}/*"
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid = "ReadTheStream"
    actions = [
      "kinesis:DescribeStream",
      "kinesis:DescribeStreamSummary",
      "kinesis:GetRecords",
      "kinesis:GetShardIterator",
      "kinesis:ListShards",
    ]
    resources = [aws_kinesis_stream.events.arn]
  }
  statement {
    sid       = "DecryptTheStream"
    actions   = ["kms:Decrypt"]
    resources = ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["kinesis.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.lake_prefix}/*", local.lake_prefix]
    }
  }
  statement {
    sid       = "AppendToTheLake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] # a batch whose hand-over lost deletes its files
    resources = [local.lake_objects]
  }
  statement {
    sid       = "ShardCheckpoints"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [local.table_arns["checkpoints"]]
  }
  statement {
    sid = "HandManifestsOver"
    # The manifest log is one module the committer shares: Scan and BatchWriteItem are its
    # committer-side calls, which the ingest code links but never makes.
    actions = [
      "dynamodb:PutItem",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:BatchWriteItem",
    ]
    resources = [aws_dynamodb_table.manifests.arn]
  }
  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed["ingest"].arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["ingest"].arn}:*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

data "aws_iam_policy_document" "compact" {
  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.lake_prefix}/*", local.lake_prefix]
    }
  }
  statement {
    sid       = "RewriteTheLake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] # vacuum deletes
    resources = [local.lake_objects]
  }
  statement {
    sid       = "Lease"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    resources = [local.table_arns["leases"]]
  }
  statement {
    sid       = "ReadSweepResults" # the sweep's candidates: Athena's result (sweep.tf)
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.athena_results.arn}/${local.sweep_results}/*"]
  }
  statement {
    sid = "SyncGlue"
    actions = [
      "glue:CreateDatabase",
      "glue:GetDatabase",
      "glue:CreateTable",
      "glue:GetTable",
      "glue:UpdateTable",
    ]
    resources = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      aws_glue_catalog_database.lake.arn,
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${aws_glue_catalog_database.lake.name}/*",
    ]
  }
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed["compact"].arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["compact"].arn}:*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

data "aws_iam_policy_document" "commit" {
  statement {
    sid = "ReadTheManifestStream"
    actions = [
      "dynamodb:DescribeStream",
      "dynamodb:GetRecords",
      "dynamodb:GetShardIterator",
      "dynamodb:ListStreams",
    ]
    resources = ["${aws_dynamodb_table.manifests.arn}/stream/*"]
  }
  statement {
    sid = "Manifests"
    actions = [
      "dynamodb:PutItem",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:Scan",
      "dynamodb:BatchWriteItem",
    ]
    resources = [aws_dynamodb_table.manifests.arn]
  }
  statement {
    sid       = "ListTheLake"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.lake_prefix}/*", local.lake_prefix]
    }
  }
  statement {
    sid       = "CommitToTheLake"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"] # swept manifest bodies
    resources = [local.lake_objects]
  }
  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed["commit"].arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda["commit"].arn}:*"]
  }
  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"] # X-Ray has no resource-level permissions
  }
}

locals {
  policies = {
    ingest  = data.aws_iam_policy_document.ingest.json
    compact = data.aws_iam_policy_document.compact.json
    commit  = data.aws_iam_policy_document.commit.json
  }
}

resource "aws_iam_role_policy" "lambda" {
  for_each = local.functions
  name     = "${each.value.name}-least-privilege"
  role     = aws_iam_role.lambda[each.key].id
  policy   = local.policies[each.key]
}
