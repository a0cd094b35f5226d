//! The ingest Lambda: Kinesis batches into `raw` and `quarantine`, exactly once per shard.
//! Configure the event source mapping with `ReportBatchItemFailures` and
//! `ParallelizationFactor = 1`. `LAKEHOUSE_COMMIT_MODE=grouped` hands the files over to
//! each table's committer (`LAKEHOUSE_MANIFEST_TABLE`) instead of committing them.

use std::sync::Arc;

use anyhow::Result;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lakehouse_dynamo_manifests::DynamoManifestLog;
use lakehouse_ingest::IngestFlags;
use lakehouse_ingest_lambda::checkpoint::CheckpointStore;
use lakehouse_ingest_lambda::stream::StreamIngest;
use lakehouse_lake::Table;
use lakehouse_lambda_shared::{self as runtime, Metric};
use lambda_runtime::LambdaEvent;
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let configure = async { Ok(Mutex::new(configure().await?)) };
    runtime::serve(configure, |ingest, event| async move {
        handle(&ingest, event).await
    })
    .await
}

async fn configure() -> Result<StreamIngest> {
    let lake = runtime::lake_from_env()?;
    // The same options as `lakehouse ingest`'s flags, from their LAKEHOUSE_* variables.
    let options = runtime::flags_from_env::<IngestFlags>("ingest")?.options();
    let config = lakehouse_aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let mode = runtime::env_or("LAKEHOUSE_COMMIT_MODE", "direct".to_string())?;
    match mode.as_str() {
        "direct" => {
            let table = runtime::required_env(
                "LAKEHOUSE_CHECKPOINT_TABLE",
                "the DynamoDB table of shard checkpoints",
            )?;
            let store = CheckpointStore::new(client, table);
            Ok(StreamIngest::new(lake, store, options))
        }
        "grouped" => {
            let manifests = runtime::required_env(
                "LAKEHOUSE_MANIFEST_TABLE",
                "the DynamoDB table of manifests (grouped mode)",
            )?;
            let open = |table| DynamoManifestLog::open(client.clone(), &manifests, &lake, table);
            let (raw, _) = open(Table::Raw).await?;
            let (quarantine, _) = open(Table::Quarantine).await?;
            Ok(StreamIngest::grouped(
                lake,
                Arc::new(raw),
                Arc::new(quarantine),
                options,
            ))
        }
        other => anyhow::bail!("LAKEHOUSE_COMMIT_MODE={other:?}: expected direct or grouped"),
    }
}

async fn handle(
    ingest: &Mutex<StreamIngest>,
    event: LambdaEvent<KinesisEvent>,
) -> Result<KinesisEventResponse, lambda_runtime::Error> {
    let started = std::time::Instant::now();
    let (response, report) = ingest.lock().await.ingest(&event.payload).await;
    let handler_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "{}",
        runtime::emf_line(
            &[("Function", &runtime::function_dimension("ingest"))],
            &[
                Metric::count("Records", report.records),
                Metric::count("UserRecords", report.user_records),
                Metric::count("Appended", report.appended),
                Metric::count("Quarantined", report.quarantined),
                Metric::count("AlreadyCommitted", report.already_committed),
                Metric::bytes("Bytes", report.bytes),
                Metric::millis("CommitLatency", report.commit_millis),
                Metric::count("CommitRetries", report.commit_retries),
                Metric::count("HandedOver", report.handed_over),
                Metric::count("RepairedCheckpoints", report.repaired_checkpoints),
                Metric::count("FailedShards", report.failed_shards),
            ],
        )
    );
    tracing::info!(
        request_id = event.context.request_id,
        report = serde_json::to_string(&report).unwrap_or_default(),
        failures = response.batch_item_failures.len(),
        // The handler's own time, event parsing excluded: beside Lambda's billed
        // duration it tells the runtime's share from ours.
        handler_ms,
        "batch done"
    );
    Ok(response)
}
