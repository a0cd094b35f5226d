//! The ingest Lambda: Kinesis batches into `raw` and `quarantine`, exactly once per shard.
//! Configure the event source mapping with `ReportBatchItemFailures` and
//! `ParallelizationFactor = 1`.

use std::sync::Arc;

use anyhow::{Context, Result};
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::KinesisEventResponse;
use lakehouse_ingest::IngestOptions;
use lakehouse_ingest_lambda::checkpoint::CheckpointStore;
use lakehouse_ingest_lambda::stream::StreamIngest;
use lakehouse_lake::Lake;
use lakehouse_lambda_shared::{self as runtime, Metric};
use lambda_runtime::{LambdaEvent, service_fn};
use tokio::sync::Mutex;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_json_logs();
    let ingest = match configure().await {
        Ok(ingest) => Arc::new(Mutex::new(ingest)),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "bad configuration");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<KinesisEvent>| {
        let ingest = ingest.clone();
        async move { handle(&ingest, event).await }
    }))
    .await
}

async fn configure() -> Result<StreamIngest> {
    let lake_uri =
        runtime::required_env("LAKEHOUSE_LAKE", "the lake location, s3://bucket/prefix")?;
    let table = runtime::required_env(
        "LAKEHOUSE_CHECKPOINT_TABLE",
        "the DynamoDB table of shard checkpoints",
    )?;
    let lake = Lake::parse(&lake_uri).with_context(|| format!("LAKEHOUSE_LAKE={lake_uri}"))?;
    let config = lakehouse_aws::sdk_config().await;
    let store = CheckpointStore::new(aws_sdk_dynamodb::Client::new(&config), table);
    Ok(StreamIngest::new(lake, store, IngestOptions::default()))
}

async fn handle(
    ingest: &Mutex<StreamIngest>,
    event: LambdaEvent<KinesisEvent>,
) -> Result<KinesisEventResponse, lambda_runtime::Error> {
    let (response, report) = ingest.lock().await.ingest(&event.payload).await;
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
                Metric::count("RepairedCheckpoints", report.repaired_checkpoints),
                Metric::count("FailedShards", report.failed_shards),
            ],
        )
    );
    tracing::info!(
        request_id = event.context.request_id,
        report = serde_json::to_string(&report).unwrap_or_default(),
        failures = response.batch_item_failures.len(),
        "batch done"
    );
    Ok(response)
}
