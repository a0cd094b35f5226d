//! The committer Lambda (grouped mode): one function per Delta table, invoked by the
//! manifest table's DynamoDB stream (filtered to that table's items), with a reserved
//! concurrency of one. Each invocation lands every manifest its records name in one Delta
//! commit; a failure fails the invocation, and the event source mapping retries the same
//! records (a stream shard waits for its batch).

use std::sync::Arc;

use anyhow::{Context, Result};
use lakehouse_ingest::committer::Committer;
use lakehouse_ingest::manifest_log::ManifestKey;
use lakehouse_ingest_lambda::manifests::DynamoManifestLog;
use lakehouse_lake::{Lake, Table};
use lakehouse_lambda_shared::{self as runtime, Metric};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use tokio::sync::Mutex;

struct State {
    committer: Committer,
    log: DynamoManifestLog,
    table: Table,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::init_json_logs();
    let state = match configure().await {
        Ok(state) => Arc::new(Mutex::new(state)),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "bad configuration");
            return Err(e.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = state.clone();
        async move { handle(&state, event).await }
    }))
    .await
}

async fn configure() -> Result<State> {
    let lake_uri =
        runtime::required_env("LAKEHOUSE_LAKE", "the lake location, s3://bucket/prefix")?;
    let manifests = runtime::required_env(
        "LAKEHOUSE_MANIFEST_TABLE",
        "the DynamoDB table of manifests (grouped mode)",
    )?;
    let name = runtime::required_env(
        "LAKEHOUSE_COMMIT_TABLE",
        "the table to commit: raw or quarantine",
    )?;
    let table = match Table::from_name(&name) {
        Some(t @ (Table::Raw | Table::Quarantine)) => t,
        _ => anyhow::bail!("LAKEHOUSE_COMMIT_TABLE={name:?}: expected raw or quarantine"),
    };
    let lake = Lake::parse(&lake_uri).with_context(|| format!("LAKEHOUSE_LAKE={lake_uri}"))?;
    let delta = lake.open(table).await?;
    let config = lakehouse_aws::sdk_config().await;
    let log = DynamoManifestLog::new(
        aws_sdk_dynamodb::Client::new(&config),
        manifests,
        lake.table_url(table).as_str(),
        delta.object_store(),
    );
    let committer = Committer::new(delta, Arc::new(log.clone()));
    Ok(State {
        committer,
        log,
        table,
    })
}

/// The manifest keys of a DynamoDB stream event's new items that belong to this table.
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
    state: &Mutex<State>,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let mut state = state.lock().await;
    let keys = keys_of(&state.log, &event.payload);
    let started = std::time::Instant::now();
    let round = state.committer.commit_keys(keys).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    let round = match round {
        Ok(round) => round,
        Err(e) => {
            tracing::error!(table = state.table.name(), error = %e, "commit failed");
            println!(
                "{}",
                runtime::emf_line(
                    &[("Function", &runtime::function_dimension("commit"))],
                    &[Metric::count("FailedCommits", 1)],
                )
            );
            return Err(e.into());
        }
    };
    let retries = round.committed.map_or(0, |c| c.retries);
    println!(
        "{}",
        runtime::emf_line(
            &[("Function", &runtime::function_dimension("commit"))],
            &[
                Metric::count("ManifestsLanded", round.landed.len() as u64),
                Metric::count("Records", round.records),
                Metric::count("Writers", round.writers as u64),
                Metric::count("AlreadyCommitted", round.already as u64),
                Metric::count("Waiting", round.waiting as u64),
                Metric::count("CommitRetries", retries),
                Metric::millis("CommitLatency", millis),
                Metric::count("FailedCommits", 0),
            ],
        )
    );
    let report = serde_json::to_value(&round).unwrap_or_default();
    tracing::info!(
        request_id = event.context.request_id,
        table = state.table.name(),
        report = report.to_string(),
        "round done"
    );
    Ok(report)
}
