# One CloudWatch dashboard per environment, from the metrics the Lambdas emit (EMF, namespace
# Lakehouse) and AWS's own. tests/deploy/check_terraform.py checks that every Lakehouse
# metric it plots is one its function's code emits.
resource "aws_cloudwatch_dashboard" "lake" {
  dashboard_name = local.prefix
  dashboard_body = templatefile("${path.module}/templates/dashboard.json.tftpl", {
    region           = local.region
    stream           = aws_kinesis_stream.events.name
    ingest_function  = local.ingest_function
    compact_function = local.compact_function
    commit_function  = local.commit_function
  })
}
