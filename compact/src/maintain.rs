//! File maintenance: bin-pack small files (see [`crate::optimize`]) and vacuum files no
//! version within the retention needs.

use std::num::NonZeroU64;

use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::DeltaOperation;
use lakehouse_lake::app_ids::VACUUMED_BEFORE_APP_ID;
use lakehouse_lake::commit::UNREFERENCED_FILE_FLOOR_HOURS;
use lakehouse_lake::log::txn_version;
use lakehouse_lake::{Commit, DEFAULT_RETENTION_DAYS, LakeError, Table};
use serde::Serialize;

use crate::error::Result;
use lakehouse_lake::lake::deleted_file_retention;

/// Times a vacuum's record is tried against concurrent maintainers recording theirs.
const RECORD_TRIES: usize = 3;
use crate::key_runs::merge_key_runs;
use crate::optimize::{RawGuard, RecentFiles, optimize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MaintenanceMetrics {
    pub files_compacted: u64,
    pub files_written: u64,
    pub files_vacuumed: u64,
    /// Bin-packing left its files to a concurrent run that rewrote them first.
    pub optimize_yielded: bool,
}

#[derive(Debug, Clone)]
pub struct MaintenanceOptions {
    pub target_file_size: NonZeroU64,
    /// Staging's recent partitions: smaller files, so replacing a row there rewrites less.
    pub recent: Option<RecentFiles>,
    pub writer_properties: WriterProperties,
    /// How long removed files stay for time travel.
    pub retention: chrono::Duration,
    /// Also delete files no commit ever referenced (left by crashed writers) once they are
    /// older than `lakehouse_lake::commit::UNREFERENCED_FILE_FLOOR_HOURS` (7 days) as well
    /// as the retention; this lists the whole table, so it is off by default.
    pub vacuum_full: bool,
}

/// Bin-packs then vacuums the lake's table `which`; files `guard` protects are not
/// rewritten. Each step commits only when it has work.
pub async fn maintain(
    mut table: DeltaTable,
    which: Table,
    guard: &RawGuard,
    options: &MaintenanceOptions,
) -> Result<(DeltaTable, MaintenanceMetrics)> {
    let mut metrics = MaintenanceMetrics::default();
    let optimized = match which {
        // The index's files are sorted runs: merged, not concatenated.
        Table::Keys => merge_key_runs(&table).await?,
        _ => {
            optimize(
                &table,
                which,
                options.target_file_size.get(),
                options.recent,
                &options.writer_properties,
                guard,
            )
            .await?
        }
    };
    metrics.files_compacted = optimized.files_removed;
    metrics.files_written = optimized.files_added;
    metrics.optimize_yielded = optimized.yielded;
    table.update_incremental(None).await?;

    record_shortened_retention(&mut table, options.retention).await?;
    let (mut table, vacuumed) = vacuum(table, options.retention, VacuumMode::Lite).await?;
    metrics.files_vacuumed = vacuumed;
    if options.vacuum_full {
        // Files no commit references: a writer may still commit one, so only those past
        // the floor go, however short the tombstone retention.
        let floor = chrono::Duration::hours(UNREFERENCED_FILE_FLOOR_HOURS);
        let vacuumed;
        (table, vacuumed) = vacuum(table, options.retention.max(floor), VacuumMode::Full).await?;
        metrics.files_vacuumed += vacuumed;
    }
    Ok((table, metrics))
}

/// Before a vacuum with a retention shorter than the table's own, records in the table the
/// instant before which versions may then miss files ([`VACUUMED_BEFORE_APP_ID`]), unless
/// an earlier vacuum recorded a later one: what the table's configuration says no longer
/// holds, and `status` must not promise time travel the files no longer allow.
async fn record_shortened_retention(
    table: &mut DeltaTable,
    retention: chrono::Duration,
) -> Result<()> {
    let configured = deleted_file_retention(table)?;
    if retention >= configured {
        return Ok(());
    }
    let from = (chrono::Utc::now() - retention).timestamp_millis();
    let mut tries = 0;
    loop {
        if txn_version(table, VACUUMED_BEFORE_APP_ID)
            .await?
            .is_some_and(|recorded| recorded >= from)
        {
            return Ok(());
        }
        let operation = DeltaOperation::VacuumStart {
            retention_check_enabled: false,
            specified_retention_millis: Some(retention.num_milliseconds()),
            default_retention_millis: configured.num_milliseconds(),
        };
        let record = Commit::new(operation, Vec::new())
            .with_transaction(Transaction::new(VACUUMED_BEFORE_APP_ID, from));
        match record.execute(table).await {
            Ok(_) => {
                table.update_incremental(None).await?;
                return Ok(());
            }
            Err(LakeError::Conflict { .. }) if tries + 1 < RECORD_TRIES => {
                // Another maintainer recorded its vacuum: read it, and ours if still later.
                tries += 1;
                table.update_incremental(None).await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Vacuums a typed table: its files follow staging's, so there is nothing to bin-pack.
pub async fn vacuum_typed(
    mut table: DeltaTable,
    retention: chrono::Duration,
    full: bool,
) -> Result<u64> {
    record_shortened_retention(&mut table, retention).await?;
    let (table, mut vacuumed) = vacuum(table, retention, VacuumMode::Lite).await?;
    if full {
        let floor = chrono::Duration::hours(UNREFERENCED_FILE_FLOOR_HOURS);
        vacuumed += vacuum(table, retention.max(floor), VacuumMode::Full)
            .await?
            .1;
    }
    Ok(vacuumed)
}

/// Deletes what `mode` finds older than `retention`: removed files (`Lite`), and also files
/// no commit references (`Full`).
async fn vacuum(
    table: DeltaTable,
    retention: chrono::Duration,
    mode: VacuumMode,
) -> Result<(DeltaTable, u64)> {
    let default_retention = chrono::Duration::days(i64::from(DEFAULT_RETENTION_DAYS));
    let (table, vacuumed) = table
        .vacuum()
        .with_retention_period(retention)
        // A shorter retention than the table's own is the operator's explicit choice.
        .with_enforce_retention_duration(retention >= default_retention)
        .with_mode(mode)
        .await?;
    Ok((table, vacuumed.files_deleted.len() as u64))
}
