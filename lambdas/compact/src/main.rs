//! The compaction Lambda, run on a schedule: the same incremental dedup + optimize + vacuum
//! as `lakehouse compact`, one run at a time per lake through a DynamoDB lease. Fanned out
//! (`{"keys": "I/N"}` or `{"types": "I/N"}` in the event, one schedule per range), one run
//! at a time per range.
//! A `{"sweep": …}` event runs a step of the sweep instead ([`lakehouse_compact_lambda::sweep`]),
//! a `{"keys_build": …}` event one of the key index's build ([`lakehouse_compact_lambda::keys_build`]),
//! an `{"erase": {}}` event the erasure requests waiting ([`lakehouse_compact_lambda::erase`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use lakehouse_catalog::Catalog;
use lakehouse_compact::{CompactError, CompactFlags, CompactOptions, Compactor};
use lakehouse_compact_lambda::erase::{Waiting, handle_erase};
use lakehouse_compact_lambda::keys_build::{KeysBuildStep, handle_keys_build};
use lakehouse_compact_lambda::lease::Lease;
use lakehouse_compact_lambda::range::{lease_key, range_of_event};
use lakehouse_compact_lambda::sweep::{SweepEvent, handle_sweep};
use lakehouse_lake::Lake;
use lakehouse_lambda_shared::{self as runtime, Metric};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

struct Config {
    lake: Lake,
    lease_table: String,
    lease_ttl: Duration,
    options: CompactOptions,
    dynamodb: aws_sdk_dynamodb::Client,
    /// Set by LAKEHOUSE_GLUE_DATABASE: Glue follows every schema change after a run.
    catalog: Option<Catalog>,
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    runtime::serve(configure(), |config, event| async move {
        handle(&config, event).await
    })
    .await
}

async fn configure() -> Result<Config> {
    let lake = runtime::lake_from_env()?;
    // The same options as `lakehouse compact`'s flags, from their LAKEHOUSE_* variables.
    let options = runtime::flags_from_env::<CompactFlags>("compaction")?
        .options()
        .map_err(anyhow::Error::msg)?;
    let sdk = lakehouse_aws::sdk_config().await;
    let catalog = match std::env::var("LAKEHOUSE_GLUE_DATABASE") {
        Ok(db) if !db.is_empty() => Some(
            Catalog::new(aws_sdk_glue::Client::new(&sdk), &db)
                .with_context(|| format!("LAKEHOUSE_GLUE_DATABASE={db}"))?,
        ),
        _ => None,
    };
    Ok(Config {
        lake,
        lease_table: runtime::required_env(
            "LAKEHOUSE_LEASE_TABLE",
            "the DynamoDB table of the compaction lease",
        )?,
        // Longer than the function's timeout, so a live run never loses it unrenewed.
        lease_ttl: Duration::from_secs(runtime::env_or("LAKEHOUSE_LEASE_SECONDS", 960)?),
        options,
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        catalog,
    })
}

async fn handle(
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let started = Instant::now();
    if let Some(field) = event.payload.get("sweep") {
        let sweep = SweepEvent::parse(field)?;
        return Ok(handle_sweep(&config.lake, sweep, config.options.max_rows_per_commit).await?);
    }
    if event.payload.get("erase").is_some() {
        let report = |waiting: &Waiting| {
            emit(&[
                Metric::count("ErasuresPending", waiting.pending),
                Metric::count("ErasureOldestPendingSeconds", waiting.oldest_age_seconds),
            ])
        };
        return Ok(handle_erase(&config.lake, report).await?);
    }
    if let Some(field) = event.payload.get("keys_build") {
        let step = KeysBuildStep::parse(field)?;
        let rows = config.options.max_rows_per_commit;
        return Ok(handle_keys_build(&config.lake, step, rows).await?);
    }
    // Fan-out: a schedule per range sends its range; each range has its own lease.
    let range = range_of_event(&event.payload)?;
    let key = lease_key(config.lake.root().as_str(), range);
    let owner = event.context.request_id.clone();
    let lease = Lease::acquire(
        config.dynamodb.clone(),
        &config.lease_table,
        &key,
        &owner,
        config.lease_ttl,
    )
    .await?;
    let lease = match lease {
        Ok(lease) => Arc::new(lease),
        Err(held) => {
            tracing::info!(
                holder = held.owner,
                expires_in_ms = held.expires_in_ms,
                "another compaction holds the lease: skipping"
            );
            emit(&[Metric::count("Skipped", 1)]);
            return Ok(
                json!({ "status": "skipped", "held_by": held.owner, "expires_in_ms": held.expires_in_ms }),
            );
        }
    };
    let options = CompactOptions {
        range,
        ..config.options.clone()
    };
    let compactor = Compactor::new(config.lake.clone(), options).with_fence(lease.clone());
    let result = compactor.run().await;
    // Under the lease, so two runs never sync at once (of fanned-out runs, range 0 syncs).
    // A sync compares first and writes only what differs, so running it every time is how
    // Glue never lags a schema change (a table's first commit included).
    let syncs = range.is_none_or(|r| r.index() == 0);
    let synced = match (&result, &config.catalog) {
        (Ok(_), Some(catalog)) if syncs => Some(catalog.sync_tables(&config.lake).await),
        _ => None,
    };
    // Released whatever happened: a failed run must not block the next one for the TTL.
    if let Err(e) = Lease::clone(&lease).release().await {
        tracing::warn!(error = %e, "lease not released; it expires on its own");
    }
    let report = match result {
        Ok(report) => report,
        // Another run took the lease over (this one overran it): stopping is the design
        // working, not a failure to retry.
        Err(CompactError::Fenced(reason)) => {
            tracing::warn!(reason, "lease lost: stopped before committing");
            emit(&[Metric::count("LostLease", 1)]);
            return Ok(json!({ "status": "stopped", "reason": reason }));
        }
        Err(e) => return Err(e.into()),
    };
    let catalog = match synced {
        Some(Ok(sync)) => {
            tracing::info!(changed = sync.changed(), report = %sync, "glue synced");
            json!({ "changed": sync.changed(), "report": sync.to_string() })
        }
        // The compaction is committed; the next run syncs again. An error (not a
        // success) so the failure shows in the function's Errors metric and alarms.
        Some(Err(e)) => {
            return Err(anyhow::anyhow!("compacted, but the Glue sync failed: {e}").into());
        }
        None => Value::Null,
    };
    let total = report.total();
    let (compacted, vacuumed) = report.maintenance.iter().fold((0, 0), |(c, v), (_, m)| {
        (c + m.files_compacted, v + m.files_vacuumed)
    });
    emit(&[
        Metric::count("Skipped", 0),
        Metric::count("StagingCommits", report.commits.len() as u64),
        // The backlog this run found: raw commits past what staging had consumed.
        Metric::count(
            "RawCommitsBehind",
            (report.raw_version + 1)
                .saturating_sub(report.raw_consumed_before.map_or(0, |v| v + 1)),
        ),
        Metric::count("RowsRead", total.source_rows),
        // Beside RowsRead: what a key range decoded of raw for them (other ranges' rows).
        Metric::count("RawRowsScanned", total.raw_rows_scanned),
        Metric::count("Inserted", total.inserted),
        Metric::count("Updated", total.updated),
        Metric::count("Discarded", total.discarded),
        Metric::count("FilesCompacted", compacted),
        Metric::count("FilesVacuumed", vacuumed),
        Metric::millis("Duration", started.elapsed().as_secs_f64() * 1000.0),
    ]);
    tracing::info!(
        token = lease.token(),
        report = serde_json::to_string(&report).unwrap_or_default(),
        "compaction done"
    );
    Ok(
        json!({ "status": "compacted", "lease_token": lease.token(), "report": report, "catalog": catalog }),
    )
}

fn emit(metrics: &[Metric]) {
    println!(
        "{}",
        runtime::emf_line(
            &[("Function", &runtime::function_dimension("compact"))],
            metrics
        )
    );
}
