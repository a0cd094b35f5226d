//! The lake's health at a glance, read from the Delta logs only (no data file is read, so
//! it stays fast on S3): per table its version, last commit, files, small files and
//! partitions, and how far back time travel still reaches; how far staging is behind raw;
//! and what quarantine took lately, by reason (each ingest commit records its counts).
//!
//! - [`types`]: what `status` reports, and the thresholds a cron check gives.
//! - [`tables`]: each table's files, commits and time-travel window.
//! - [`lag`]: how far staging is behind raw; [`keys`]: the key index's lag and build.
//! - [`quarantine`]: what quarantine took in the window, by reason.
//! - [`typed`]: the typed tables' rows against staging's, and their rescued values.

mod keys;
mod lag;
mod quarantine;
mod tables;
mod typed;
mod types;

pub use keys::keys_health;
pub use types::{
    CompactionLag, Crossed, KeysHealth, LakeStatus, Limits, QuarantineWindow, RangeConsumed,
    StatusOptions, TableStatus, TypedHealth,
};

use lakehouse_lake::{Lake, LakeError, Table};

use crate::error::Result;

use lag::{compaction_lag, lag_after};
use quarantine::quarantine_window;
use tables::table_status;

/// The status of `lake`, reading only its logs.
pub async fn lake_status(lake: &Lake, options: &StatusOptions) -> Result<LakeStatus> {
    let (raw, staging, quarantine, keys) = tokio::try_join!(
        lake.open_existing(Table::Raw),
        lake.open_existing(Table::Staging),
        lake.open_existing(Table::Quarantine),
        lake.open_existing(Table::Keys)
    )?;
    if raw.is_none() && staging.is_none() && quarantine.is_none() {
        return Err(LakeError::EmptyLake {
            location: lake.root().to_string(),
        }
        .into());
    }
    let mut tables = Vec::new();
    for (table, delta) in [
        (Table::Raw, &raw),
        (Table::Staging, &staging),
        (Table::Quarantine, &quarantine),
        (Table::Keys, &keys),
    ] {
        tables.push(table_status(table, delta.as_ref(), options).await?);
    }
    let compaction = match (&raw, &staging) {
        (Some(raw), Some(staging)) => Some(compaction_lag(raw, staging, options.now).await?),
        (Some(raw), None) => Some(lag_after(raw, None, options.now).await?),
        _ => None,
    };
    let quarantine = match &quarantine {
        Some(q) => Some(quarantine_window(q, options).await?),
        None => None,
    };
    let keys = match &staging {
        Some(staging) => Some(keys_health(staging, keys.as_ref()).await?),
        None => None,
    };
    let typed = match &staging {
        Some(staging) => Some(typed::typed_health(lake, staging).await?),
        None => None,
    };
    Ok(LakeStatus {
        location: lake.root().to_string(),
        at: options.now,
        tables,
        compaction,
        quarantine,
        keys,
        typed,
    })
}
