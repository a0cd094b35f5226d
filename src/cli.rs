//! The command line: names and flags here are public interface. Defaults come from the
//! options' `Default` in the crates that own them, never repeated here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use lakehouse::generate::GenerateOptions;
use lakehouse_catalog::ScanOptions;
use lakehouse_compact::CompactOptions;
use lakehouse_ingest::event::MAX_RECORD_BYTES_LIMIT;
use lakehouse_ingest::inputs::DEFAULT_COMMIT_EVERY_BYTES;
use lakehouse_ingest::{DEFAULT_BUFFER_BYTES, IngestOptions};

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

#[derive(Args, Clone)]
pub struct LakeArg {
    /// Lake location: a local folder, file://… or s3://bucket/prefix (AWS settings from the
    /// standard environment: AWS_REGION, AWS_ENDPOINT_URL, the credential chain).
    #[arg(long, env = "LAKEHOUSE_LAKE")]
    pub lake: String,
}

/// For the commands that create tables.
#[derive(Args, Clone)]
pub struct LayoutArg {
    /// How raw is partitioned if this run creates it: `date-type` (event_date, event_type)
    /// or `date` (event_date only, rows sorted by event_type: one file per batch and day,
    /// for volume; see docs/scaling.md). An existing raw keeps its own.
    #[arg(long, env = "LAKEHOUSE_RAW_LAYOUT", value_enum, default_value_t = RawLayoutArg::DateType)]
    pub raw_layout: RawLayoutArg,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RawLayoutArg {
    DateType,
    Date,
}

impl From<RawLayoutArg> for lakehouse_lake::RawLayout {
    fn from(arg: RawLayoutArg) -> Self {
        match arg {
            RawLayoutArg::DateType => lakehouse_lake::RawLayout::DateType,
            RawLayoutArg::Date => lakehouse_lake::RawLayout::Date,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Append events to raw (invalid records to quarantine), one commit per table per run
    /// (per --commit-every-mb of input for large backfills).
    Ingest {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        layout: LayoutArg,
        /// Input format.
        #[arg(long, value_enum, default_value_t = InputFormat::Jsonl)]
        format: InputFormat,
        /// Inputs: files, `-` or none for stdin, a quoted local glob, or S3 objects
        /// (`s3://bucket/prefix/`, `s3://bucket/2025/*/*/*/*.gz`). gzip and zstd are read
        /// by their magic bytes. An input both tables already hold is skipped (stdin
        /// always appends).
        files: Vec<PathBuf>,
        /// Commit once this many MiB of input (as stored) are read, and at the end: an
        /// interrupted backfill reruns from its last commit.
        #[arg(
            long,
            default_value_t = DEFAULT_COMMIT_EVERY_BYTES >> 20,
            value_parser = clap::value_parser!(u64).range(1..)
        )]
        commit_every_mb: u64,
        /// Load files again even when their content is already in the lake.
        #[arg(long)]
        force: bool,
        /// A record longer than this is quarantined as too large, with its first 4 KiB.
        #[arg(
            long,
            default_value_t = IngestOptions::default().max_record_bytes as u64,
            value_parser = clap::value_parser!(u64).range(1..=MAX_RECORD_BYTES_LIMIT as u64)
        )]
        max_record_bytes: u64,
        /// MiB of rows each table holds before writing files: the ingest's memory. Less
        /// makes more, smaller files when an input spans many partitions.
        #[arg(
            long,
            default_value_t = (DEFAULT_BUFFER_BYTES >> 20) as u64,
            value_parser = clap::value_parser!(u64).range(1..=65_536)
        )]
        buffer_mb: u64,
    },
    /// Dedup what raw gained into staging (exactly once), then optimize and vacuum.
    Compact {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        layout: LayoutArg,
        /// Search staging files within this many days of a new row's date for older copies
        /// (0: every file) instead of the key index, which finds copies of any age.
        #[arg(long)]
        horizon_days: Option<u32>,
        /// A hot window: look up only the key index's runs indexed within the last H hours,
        /// so a round costs what the window holds. A copy whose staged row is older stays
        /// beside it until `lakehouse keys sweep`. Unset: every run, copies of any age.
        #[arg(long, value_name = "H", conflicts_with = "horizon_days")]
        hot_hours: Option<u32>,
        /// Staging partitions dated this many days before today (UTC) or later are recent:
        /// their files stay small, since a newer copy of a row rewrites its whole file.
        #[arg(long, default_value_t = CompactOptions::default().recent_days)]
        recent_days: u32,
        /// The size (MiB) recent partitions' files stay under: what replacing one row
        /// there rewrites at most. Older partitions are packed to 128 MiB.
        #[arg(
            long,
            default_value_t = CompactOptions::default().recent_file_size.get() >> 20,
            value_parser = clap::value_parser!(u64).range(1..=1_024)
        )]
        recent_file_mb: u64,
        /// Hours of history vacuum keeps for time travel.
        #[arg(long, default_value_t = default_retention_hours())]
        retention_hours: u32,
        /// Vacuum also deletes files no commit references (lists the whole table).
        #[arg(long)]
        vacuum_full: bool,
        /// Dedup only: skip optimize and vacuum.
        #[arg(long)]
        no_maintenance: bool,
        /// Fan-out: merge only event-type range I of N (e.g. 2/4), one of N runs that may go
        /// at once; range 0 also maintains the tables. An event staged under two types
        /// keeps a row in each range: prefer --keys.
        #[arg(long, value_name = "I/N", value_parser = parse_types, conflicts_with = "keys")]
        types: Option<lakehouse_lake::RunRange>,
        /// Fan-out: merge only key range I of N (N a power of two up to 64, e.g. 2/4): every
        /// copy of an event falls in one range, and each reads 1/N of the key index. Range 0
        /// also maintains the tables.
        #[arg(long, value_name = "I/N", value_parser = parse_keys)]
        keys: Option<lakehouse_lake::RunRange>,
    },
    /// Run SQL over raw, staging and quarantine with DataFusion.
    Query {
        #[command(flatten)]
        lake: LakeArg,
        /// Read TABLE at version N (time travel), e.g. --version staging=3.
        #[arg(long = "version", value_name = "TABLE=N")]
        versions: Vec<String>,
        /// Read every table as of this instant (RFC 3339, e.g. 2025-11-24T10:00:00Z).
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Read the SQL from this file instead of the argument.
        #[arg(long, conflicts_with = "sql")]
        file: Option<PathBuf>,
        /// The SQL statement.
        #[arg(required_unless_present = "file")]
        sql: Option<String>,
    },
    /// Erase subjects' events from raw, staging and quarantine and from every readable
    /// version, and record a receipt in `erasures` (docs/erasure.md).
    Erase(crate::commands::erase::EraseArgs),
    /// Show or set the subject paths: which field of each event type names its subject.
    Subjects(crate::commands::subjects::SubjectsArgs),
    /// List a table's versions: time, operation, rows and files added and removed.
    History {
        #[command(flatten)]
        lake: LakeArg,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
        /// Newest versions to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// raw, staging or quarantine.
        table: String,
    },
    /// The lake's health from its logs (no data file read): per table version, last
    /// commit, files, small files, partitions and time-travel window; compaction lag;
    /// quarantine by reason. Fails when a --max-… threshold is crossed (a cron check).
    Status {
        #[command(flatten)]
        lake: LakeArg,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
        /// Fail when the oldest raw commit staging has not consumed is older than this
        /// (e.g. 90s, 15m, 1h, 2d).
        #[arg(long, value_parser = parse_duration)]
        max_lag: Option<chrono::Duration>,
        /// Fail when quarantine took more rows than this in the window.
        #[arg(long)]
        max_quarantined: Option<u64>,
        /// Fail when a table has more files below the optimize target than this.
        #[arg(long)]
        max_small_files: Option<u64>,
        /// How far back quarantine is counted.
        #[arg(long, value_parser = parse_duration, default_value = "24h")]
        quarantine_window: chrono::Duration,
    },
    /// Inspect, export and re-drive quarantined records.
    Quarantine {
        #[command(subcommand)]
        command: QuarantineCommand,
    },
    /// Staging's key index (staging_keys): bring it up to staging, or check it equals
    /// staging's keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Register the tables (and inferred views) in AWS Glue for Athena.
    Catalog {
        #[command(subcommand)]
        command: CatalogCommand,
    },
    /// Write synthetic events as JSON Lines to stdout, deterministic for a seed.
    Generate {
        #[arg(long)]
        events: u64,
        #[arg(long, default_value_t = GenerateOptions::default().seed)]
        seed: u64,
        #[arg(long, default_value_t = GenerateOptions::default().duplicate_rate)]
        duplicate_rate: f64,
        #[arg(long, default_value_t = GenerateOptions::default().invalid_rate)]
        invalid_rate: f64,
        #[arg(long, default_value_t = GenerateOptions::default().days)]
        days: u32,
    },
    /// The whole path on a local folder: generate, ingest in batches, compact, query.
    Demo {
        #[arg(long, default_value = "demo-lake")]
        lake: PathBuf,
        #[arg(long, default_value_t = GenerateOptions::default().events)]
        events: u64,
        #[command(flatten)]
        layout: LayoutArg,
    },
}

fn parse_types(text: &str) -> Result<lakehouse_lake::RunRange, String> {
    lakehouse_lake::RunRange::parse(lakehouse_lake::SplitBy::Types, text)
}

fn parse_keys(text: &str) -> Result<lakehouse_lake::RunRange, String> {
    lakehouse_lake::RunRange::parse(lakehouse_lake::SplitBy::Keys, text)
}

/// A duration as `<n><unit>`, the unit one of s, m, h, d.
fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let invalid = || format!("{text:?}: expected a number and a unit (s, m, h, d), e.g. 15m");
    let split = text.len().checked_sub(1).ok_or_else(invalid)?;
    let (number, unit) = text.split_at_checked(split).ok_or_else(invalid)?;
    let n: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3_600),
        "d" => n.checked_mul(86_400),
        _ => None,
    };
    seconds
        .filter(|s| *s >= 0)
        .and_then(chrono::Duration::try_seconds)
        .ok_or_else(invalid)
}

fn default_retention_hours() -> u32 {
    u32::try_from(CompactOptions::default().retention.num_hours()).unwrap_or(u32::MAX)
}

/// Which quarantine rows a command takes.
#[derive(Args, Clone)]
pub struct QuarantineSelection {
    /// An SQL condition over quarantine's columns (error, source, source_position, raw,
    /// ingested_at, ingest_seq, ingest_date), e.g. "error LIKE 'missing field%'".
    #[arg(long = "where", value_name = "SQL")]
    pub where_sql: Option<String>,
    /// Only rows quarantined at or after this: RFC 3339, or a duration back from now
    /// (e.g. 24h, 7d).
    #[arg(long, value_parser = parse_since)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// Rejected rows by reason: how many, how many re-driven, first and last seen.
    List {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        selection: QuarantineSelection,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
    },
    /// The selected records' bytes exactly, one per line, oldest first, to fix them.
    /// Records already re-driven are left out unless --all. With --out F, F.keys names
    /// each line's quarantine row, for `redrive --file F`.
    Export {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        selection: QuarantineSelection,
        /// Write here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        all: bool,
    },
    /// Re-drive the selected rows through the current event rules into raw (each row at
    /// most once; rows still invalid stay as they are), or, with --file, load fixed lines.
    Redrive {
        #[command(flatten)]
        lake: LakeArg,
        #[command(flatten)]
        selection: QuarantineSelection,
        /// Fixed records as JSON Lines. Beside an export's F.keys (one line per exported
        /// record, fixed in place; an empty line skips one): each becomes the re-drive of
        /// the quarantine row it names, at most once. Without one: loaded like `ingest`.
        #[arg(long, conflicts_with_all = ["where_sql", "since"])]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Index what staging gained since the index's version (or rebuild the index when it
    /// has none for this staging); compaction does this after every run.
    Update {
        #[command(flatten)]
        lake: LakeArg,
        /// A rebuild commits the entries of about this many staging rows at a time (bounds
        /// memory; an interrupted rebuild goes on from its last commit).
        #[arg(long, default_value_t = lakehouse_compact::CompactOptions::default().max_rows_per_commit,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_rows_per_commit: u64,
    },
    /// Resolve every event_uuid staged more than once to its winning copy, over all of
    /// staging (reads staging's uuids whole): the copies rounds that searched less left
    /// (--horizon-days, a fan-out's ranges). Records the version swept (`status`).
    Sweep {
        #[command(flatten)]
        lake: LakeArg,
        /// Staged rows one pass holds (~24 bytes each); a larger staging takes several
        /// passes, each reading its uuids again.
        #[arg(long, default_value_t = lakehouse_compact::sweep::ROWS_PER_PASS,
              value_parser = clap::value_parser!(u64).range(1..))]
        rows_per_pass: u64,
        /// Sweep only the copies an engine found: the CSV result (with its header) of
        /// sql/queries/duplicated_events.sql, as Athena writes it to S3 or `lakehouse query
        /// --format csv` prints it; `-` reads standard input. Only the partitions it names
        /// are read.
        #[arg(long, value_name = "CSV", requires = "as_of", conflicts_with = "sql")]
        candidates: Option<String>,
        /// With --candidates: a staging version the query read at least (the version
        /// `lakehouse status` showed before it started); recorded as swept.
        #[arg(long, value_name = "VERSION", requires = "candidates")]
        as_of: Option<u64>,
        /// Find the copies with DataFusion, running sql/queries/duplicated_events.sql on
        /// staging's latest version (the query Athena runs at scale), then sweep those.
        #[arg(long, conflicts_with = "by_index")]
        sql: bool,
        /// Find the copies through the key index: the rows staged since the last sweep, the
        /// partitions the index names for their keys, and their own (reads what arrived,
        /// not all of staging). Needs one earlier sweep.
        #[arg(long, conflicts_with = "candidates")]
        by_index: bool,
        /// The key index is brought up to staging afterwards; a rebuild commits the
        /// entries of about this many staging rows at a time.
        #[arg(long, default_value_t = lakehouse_compact::CompactOptions::default().max_rows_per_commit,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_rows_per_commit: u64,
    },
    /// Build the index in chunks that may run at once, anywhere (`update` builds them one
    /// after another): `--plan` starts a build when the index needs one and lists pending
    /// chunks; `--as-of V --files A..B` indexes one chunk, exactly once. The next `update`
    /// (or compaction) records the finished build. The keys-build state machine's steps.
    Build {
        #[command(flatten)]
        lake: LakeArg,
        /// Start a build if the index needs one, and list the chunks still to index.
        #[arg(long, conflicts_with_all = ["as_of", "files"])]
        plan: bool,
        /// The staging version being built, as the plan said.
        #[arg(long, value_name = "VERSION", requires = "files")]
        as_of: Option<u64>,
        /// The chunk to index: files FROM..TO of that version's live files in path order.
        #[arg(long, value_name = "FROM..TO", requires = "as_of", value_parser = parse_chunk)]
        files: Option<lakehouse_compact::key_build::Chunk>,
        /// A chunk holds the files of about this many staging rows.
        #[arg(long, default_value_t = lakehouse_compact::key_build::ROWS_PER_CHUNK,
              value_parser = clap::value_parser!(u64).range(1..))]
        rows_per_chunk: u64,
        /// Chunks listed at most; plan again once they are done.
        #[arg(long, default_value_t = lakehouse_compact::key_build::CHUNKS_PER_PLAN,
              value_parser = clap::value_parser!(u64).range(1..))]
        max_chunks: u64,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
    },
    /// Compare every key of the index with staging at the version the index holds (reads
    /// both tables whole); fails when they differ.
    Check {
        #[command(flatten)]
        lake: LakeArg,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
    },
}

fn parse_chunk(text: &str) -> Result<lakehouse_compact::key_build::Chunk, String> {
    let bad = || format!("{text:?}: expected FROM..TO, file numbers with FROM < TO");
    let (from, to) = text.split_once("..").ok_or_else(bad)?;
    let (from, to) = (
        from.parse().map_err(|_| bad())?,
        to.parse().map_err(|_| bad())?,
    );
    if from >= to {
        return Err(bad());
    }
    Ok(lakehouse_compact::key_build::Chunk { from, to })
}

fn parse_since(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    let back = parse_duration(text)
        .map_err(|_| format!("{text:?}: expected RFC 3339 or a duration such as 24h"))?;
    chrono::Utc::now()
        .checked_sub_signed(back)
        .ok_or_else(|| format!("{text:?}: too far back"))
}

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Create or update the Glue database and the Delta tables raw, staging, quarantine.
    /// Idempotent: only what differs from the lake is written.
    Sync {
        #[command(flatten)]
        lake: LakeArg,
        /// Glue database (lower-case letters, digits, underscores); created if missing.
        #[arg(long, env = "LAKEHOUSE_GLUE_DATABASE")]
        database: String,
    },
    /// Infer each event type's payload fields from staging and write one typed Athena
    /// view per event type.
    Views {
        #[command(flatten)]
        lake: LakeArg,
        /// Folder of the generated `<event_type>.sql` files.
        #[arg(long, default_value = "sql/views/generated")]
        out: PathBuf,
        /// Read events of the last N days (by event_date); 0 reads all of staging.
        #[arg(long, default_value_t = ScanOptions::default().days.unwrap_or(0))]
        days: u32,
        /// Events parsed per event type at most.
        #[arg(long, default_value_t = ScanOptions::default().sample_per_type)]
        sample: u64,
        /// Also create or replace the views in this Glue database.
        #[arg(long, env = "LAKEHOUSE_GLUE_DATABASE")]
        database: Option<String>,
        /// Write the views to Glue (needs --database).
        #[arg(long, requires = "database")]
        apply: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum InputFormat {
    /// JSON Lines: one event per line.
    Jsonl,
    /// A Lambda Kinesis event document: {"Records":[{"kinesis":{"data":"<base64>"}}]}.
    KinesisEvent,
}

impl InputFormat {
    /// The name in `--format`, part of an input's identity (see `lakehouse_ingest::load`).
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Jsonl => "jsonl",
            InputFormat::KinesisEvent => "kinesis-event",
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum HistoryFormat {
    Table,
    Json,
}
