//! The command line: one variant per command, its arguments in the command's file. Names
//! and flags are public interface.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lakehouse",
    version,
    about = "Event-stream lakehouse: JSON events into Delta tables raw, staging and quarantine"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Append events to raw (invalid records to quarantine), one commit per table per run
    /// (per --commit-every-mb of input for large backfills).
    Ingest(crate::commands::ingest::IngestArgs),
    /// Dedup what raw gained into staging (exactly once), then optimize and vacuum.
    Compact(crate::commands::compact::CompactArgs),
    /// Run SQL over raw, staging and quarantine with DataFusion.
    Query(crate::commands::query::QueryArgs),
    /// Erase subjects' events from raw, staging and quarantine and from every readable
    /// version, and record a receipt in `erasures` (docs/erasure.md).
    Erase(crate::commands::erase::EraseArgs),
    /// Show or set the subject paths: which field of each event type names its subject.
    Subjects(crate::commands::subjects::SubjectsArgs),
    /// List a table's versions: time, operation, rows and files added and removed.
    History(crate::commands::history::HistoryArgs),
    /// The lake's health from its logs (no data file read): per table version, last
    /// commit, files, small files, partitions and time-travel window; compaction lag;
    /// quarantine by reason. Fails when a --max-… threshold is crossed (a cron check).
    Status(crate::commands::status::StatusArgs),
    /// Inspect, export and re-drive quarantined records.
    Quarantine {
        #[command(subcommand)]
        command: crate::commands::quarantine::QuarantineCommand,
    },
    /// Staging's key index (staging_keys): bring it up to staging, or check it equals
    /// staging's keys.
    Keys {
        #[command(subcommand)]
        command: crate::commands::keys::KeysCommand,
    },
    /// Register the tables (and inferred views) in AWS Glue for Athena.
    Catalog {
        #[command(subcommand)]
        command: crate::commands::catalog::CatalogCommand,
    },
    /// Write synthetic events as JSON Lines to stdout, deterministic for a seed.
    Generate(crate::commands::generate::GenerateArgs),
    /// The whole path on a local folder: generate, ingest in batches, compact, sweep, query,
    /// erase.
    Demo(crate::commands::demo::DemoArgs),
}
