//! The committer Lambda (grouped mode), invoked by the manifest table's DynamoDB stream with
//! a reserved concurrency of one. Each invocation lands, per table it commits
//! (`LAKEHOUSE_COMMIT_TABLES`), every manifest its records name in one Delta commit; a
//! failure fails the invocation, and the event source mapping retries the same records
//! (a stream shard waits for its batch), which then commit only what is missing.

use std::sync::Arc;

use anyhow::Result;
use lakehouse_dynamo_manifests::DynamoManifestLog;
use lakehouse_ingest::committer::Committer;
use lakehouse_ingest::manifest_log::ManifestKey;
use lakehouse_lake::Table;
use lakehouse_lambda_shared::{self as runtime, Metric};
use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tokio::sync::Mutex;

/// One table's committer and its manifest log.
struct TableCommitter {
    table: Table,
    log: DynamoManifestLog,
    committer: Committer,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let configure = async { Ok(Mutex::new(configure().await?)) };
    runtime::serve(configure, |state, event| async move {
        handle(&state, event).await
    })
    .await
}

/// The tables named in `LAKEHOUSE_COMMIT_TABLES` (default `raw,quarantine`): one function
/// may commit both, each table still in one commit per invocation, or one function per
/// table for more throughput.
async fn configure() -> Result<Vec<TableCommitter>> {
    let manifests = runtime::required_env(
        "LAKEHOUSE_MANIFEST_TABLE",
        "the DynamoDB table of manifests (grouped mode)",
    )?;
    let names = runtime::env_or("LAKEHOUSE_COMMIT_TABLES", "raw,quarantine".to_string())?;
    let lake = runtime::lake_from_env()?;
    let config = lakehouse_aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let mut committers = Vec::new();
    for name in names.split(',').map(str::trim) {
        let table = match Table::from_name(name) {
            Some(t @ (Table::Raw | Table::Quarantine)) => t,
            _ => anyhow::bail!(
                "LAKEHOUSE_COMMIT_TABLES={names:?}: {name:?} is not raw or quarantine"
            ),
        };
        let (log, delta) =
            DynamoManifestLog::open(client.clone(), manifests.clone(), &lake, table).await?;
        let committer = Committer::new(delta, Arc::new(log.clone()));
        committers.push(TableCommitter {
            table,
            log,
            committer,
        });
    }
    Ok(committers)
}

/// The manifest keys of a DynamoDB stream event's new items that belong to `log`'s table.
fn keys_of(log: &DynamoManifestLog, event: &Value) -> Vec<ManifestKey> {
    let records = event["Records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    records
        .iter()
        .filter(|r| r["eventName"] == "INSERT")
        .filter_map(|r| {
            let keys = &r["dynamodb"]["Keys"];
            log.key_from_strings(
                keys["writer"]["S"].as_str()?,
                keys["version"]["N"].as_str()?,
            )
        })
        .collect()
}

async fn handle(
    state: &Mutex<Vec<TableCommitter>>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let mut committers = state.lock().await;
    let mut report = serde_json::Map::new();
    for c in committers.iter_mut() {
        let keys = keys_of(&c.log, &event.payload);
        if keys.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let round = match c.committer.commit_keys(keys).await {
            Ok(round) => round,
            Err(e) => {
                tracing::error!(table = c.table.name(), error = %e, "commit failed");
                emit(c.table, &[Metric::count("FailedCommits", 1)]);
                return Err(e.into());
            }
        };
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        emit(
            c.table,
            &[
                Metric::count("ManifestsLanded", round.landed.len() as u64),
                Metric::count("Records", round.records),
                Metric::count("Writers", round.writers as u64),
                Metric::count("AlreadyCommitted", round.already as u64),
                Metric::count("Waiting", round.waiting as u64),
                Metric::count("CommitRetries", round.committed.map_or(0, |x| x.retries)),
                Metric::millis("CommitLatency", millis),
                Metric::count("FailedCommits", 0),
            ],
        );
        let value = serde_json::to_value(&round).unwrap_or_default();
        tracing::info!(
            request_id = event.context.request_id,
            table = c.table.name(),
            report = value.to_string(),
            "round done"
        );
        report.insert(c.table.name().to_string(), value);
    }
    Ok(Value::Object(report))
}

fn emit(table: Table, metrics: &[Metric]) {
    println!(
        "{}",
        runtime::emf_line(
            &[
                ("Function", &runtime::function_dimension("commit")),
                ("Table", table.name()),
            ],
            metrics,
        )
    );
}
