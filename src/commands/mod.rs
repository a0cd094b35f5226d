mod catalog;
mod compact;
mod demo;
pub mod erase;
mod generate;
mod history;
mod ingest;
mod keys;
mod quarantine;
mod query;
mod status;
pub mod subjects;

use std::num::NonZeroU64;

use anyhow::{Context, Result};
use lakehouse_ingest::IngestOptions;
use lakehouse_lake::Lake;

use crate::cli::Command;

/// An instant as the table outputs print it: UTC, to the second.
fn utc_seconds(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Ingest {
            lake,
            layout,
            format,
            files,
            force,
            max_record_bytes,
            buffer_mb,
            commit_every_mb,
        } => {
            let options = IngestOptions {
                // Bounded by the arguments' parsers to 1 GiB and 64 GiB.
                max_record_bytes: usize::try_from(max_record_bytes).unwrap_or(usize::MAX),
                buffer_bytes: usize::try_from(buffer_mb << 20).unwrap_or(usize::MAX),
                ..IngestOptions::default()
            };
            let lake = Lake::parse(&lake.lake)?.with_raw_layout(layout.raw_layout.into());
            let commit_every = commit_every_mb.saturating_mul(1 << 20);
            ingest::run(lake, format, &files, force, commit_every, options).await
        }
        Command::Compact {
            lake,
            layout,
            horizon_days,
            hot_hours,
            recent_days,
            recent_file_mb,
            retention_hours,
            vacuum_full,
            no_maintenance,
            types,
            keys,
        } => {
            let options = lakehouse_compact::CompactOptions {
                horizon_days,
                hot_hours,
                recent_days,
                recent_file_size: NonZeroU64::new(recent_file_mb << 20)
                    .context("--recent-file-mb must be at least 1")?,
                retention: chrono::Duration::hours(i64::from(retention_hours)),
                vacuum_full,
                skip_maintenance: no_maintenance,
                range: types.or(keys),
                ..Default::default()
            };
            let lake = Lake::parse(&lake.lake)?.with_raw_layout(layout.raw_layout.into());
            compact::run(lake, options).await
        }
        Command::Query {
            lake,
            versions,
            as_of,
            format,
            file,
            sql,
        } => query::run(&lake.lake, &versions, as_of.as_deref(), format, file, sql).await,
        Command::History {
            lake,
            format,
            limit,
            table,
        } => history::run(&lake.lake, format, limit, &table).await,
        Command::Status {
            lake,
            format,
            max_lag,
            max_quarantined,
            max_small_files,
            quarantine_window,
        } => {
            let limits = status::Limits {
                max_lag,
                max_quarantined,
                max_small_files,
            };
            status::run(&lake.lake, format, quarantine_window, &limits).await
        }
        Command::Quarantine { command } => quarantine::run(command).await,
        Command::Erase(args) => erase::run(args).await,
        Command::Subjects(args) => subjects::run(args).await,
        Command::Keys { command } => keys::run(command).await,
        Command::Catalog { command } => catalog::run(command).await,
        Command::Generate {
            events,
            seed,
            duplicate_rate,
            invalid_rate,
            days,
        } => generate::run(lakehouse::generate::GenerateOptions {
            events,
            seed,
            duplicate_rate,
            invalid_rate,
            days,
        }),
        Command::Demo {
            lake,
            events,
            layout,
        } => demo::run(&lake, events, layout.raw_layout.into()).await,
    }
}
