# The Glue database the compaction Lambda keeps in sync with the lake (tables raw, staging,
# quarantine; `lakehouse catalog views --apply` adds the per-event-type views).
resource "aws_glue_catalog_database" "lake" {
  name        = local.glue_database
  description = "${local.prefix}: raw, staging, quarantine (Delta) and per-event-type views"
}

resource "aws_athena_workgroup" "analysts" {
  name          = local.prefix
  description   = "Analysts' queries of ${local.prefix}: Athena engine v3 (reads Delta natively), scan limit"
  force_destroy = var.force_destroy

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "s3://${aws_s3_bucket.athena_results.bucket}/results/"
      encryption_configuration {
        encryption_option = "SSE_S3"
      }
    }
  }
}
