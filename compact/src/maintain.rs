//! File maintenance: bin-pack small files (see [`crate::optimize`]) and vacuum files no
//! version within the retention needs.

use std::collections::HashSet;
use std::num::NonZeroU64;

use deltalake::DeltaTable;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::parquet::file::properties::WriterProperties;
use lakehouse_lake::{DEFAULT_RETENTION_DAYS, Table};
use serde::Serialize;

use crate::error::Result;
use crate::optimize::optimize;

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
    pub writer_properties: WriterProperties,
    /// How long removed files stay for time travel.
    pub retention: chrono::Duration,
    /// Also delete files no commit ever referenced (left by crashed writers); this lists
    /// the whole table, so it is off by default.
    pub vacuum_full: bool,
}

/// Bin-packs then vacuums the lake's table `which`; files in `protected` are not
/// rewritten. Each step commits only when it has work.
pub async fn maintain(
    mut table: DeltaTable,
    which: Table,
    protected: &HashSet<String>,
    options: &MaintenanceOptions,
) -> Result<(DeltaTable, MaintenanceMetrics)> {
    let mut metrics = MaintenanceMetrics::default();
    let optimized = optimize(
        &table,
        which,
        options.target_file_size.get(),
        &options.writer_properties,
        protected,
    )
    .await?;
    metrics.files_compacted = optimized.files_removed;
    metrics.files_written = optimized.files_added;
    metrics.optimize_yielded = optimized.yielded;
    table.update_incremental(None).await?;

    let default_retention = chrono::Duration::days(i64::from(DEFAULT_RETENTION_DAYS));
    let (table, vacuumed) = table
        .vacuum()
        .with_retention_period(options.retention)
        // A shorter retention than the table's own is the operator's explicit choice.
        .with_enforce_retention_duration(options.retention >= default_retention)
        .with_mode(if options.vacuum_full {
            VacuumMode::Full
        } else {
            VacuumMode::Lite
        })
        .await?;
    metrics.files_vacuumed = vacuumed.files_deleted.len() as u64;
    Ok((table, metrics))
}
