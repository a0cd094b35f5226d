output "stream_name" {
  value = aws_kinesis_stream.events.name
}

output "lake" {
  description = "LAKEHOUSE_LAKE for the CLI: lakehouse query --lake <this> …"
  value       = local.lake_uri
}

output "glue_database" {
  value = aws_glue_catalog_database.lake.name
}

output "athena_workgroup" {
  value = aws_athena_workgroup.analysts.name
}

output "functions" {
  value = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "failed_queues" {
  value = { for k, q in aws_sqs_queue.failed : k => q.url }
}

output "dashboard_url" {
  description = "The environment's CloudWatch dashboard"
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards:name=${aws_cloudwatch_dashboard.lake.dashboard_name}"
}

output "sweep_state_machine" {
  value = aws_sfn_state_machine.sweep.arn
}

output "keys_build_state_machine" {
  value = aws_sfn_state_machine.keys_build.arn
}
