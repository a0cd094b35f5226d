use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use indicatif::{HumanBytes, ProgressBar};
use lakehouse_ingest::backfill::{Backfill, Watcher, backfill};
use lakehouse_ingest::inputs::DEFAULT_COMMIT_EVERY_BYTES;
use lakehouse_ingest::{IngestFlags, IngestSummary};
use lakehouse_lake::Lake;

use crate::args::{InputFormat, LakeArg, LayoutArg};
use crate::progress;

#[derive(Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub lake: LakeArg,
    #[command(flatten)]
    pub layout: LayoutArg,
    /// Input format.
    #[arg(long, value_enum, default_value_t = InputFormat::Jsonl)]
    pub format: InputFormat,
    /// Inputs: files, `-` or none for stdin, a quoted local glob, or S3 objects
    /// (`s3://bucket/prefix/`, `s3://bucket/2025/*/*/*/*.gz`). gzip and zstd are read
    /// by their magic bytes. An input both tables already hold is skipped (stdin
    /// always appends).
    pub files: Vec<PathBuf>,
    /// Commit once this many MiB of input (as stored) are read, and at the end: an
    /// interrupted backfill reruns from its last commit.
    #[arg(
        long,
        env = "LAKEHOUSE_COMMIT_EVERY_MB",
        default_value_t = DEFAULT_COMMIT_EVERY_BYTES >> 20,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub commit_every_mb: u64,
    /// Load files again even when their content is already in the lake.
    #[arg(long, env = "LAKEHOUSE_FORCE")]
    pub force: bool,
    #[command(flatten)]
    pub flags: IngestFlags,
}

/// Ingests the inputs (see `lakehouse_ingest::backfill`) and prints what it did.
pub async fn run(args: IngestArgs) -> Result<()> {
    let how = Backfill {
        format: args.format.into(),
        force: args.force,
        commit_every: args.commit_every_mb.saturating_mul(1 << 20),
        options: args.flags.options(),
    };
    let lake = Lake::parse(&args.lake.lake)?.with_raw_layout(args.layout.raw_layout.into());
    load(&lake, &args.files, &how).await
}

/// Loads `specs` as `how` says, with a progress bar, and prints the summary.
pub async fn load(lake: &Lake, specs: &[PathBuf], how: &Backfill) -> Result<()> {
    let bar = Bar(progress::inputs());
    let total = backfill(lake, specs, how, &bar).await?;
    bar.0.finish_and_clear();
    outln!("{}", describe(&total));
    Ok(())
}

/// The progress bar, and a line on stderr for each input passed over and each commit.
struct Bar(ProgressBar);

impl Watcher for Bar {
    fn begin(&self, _inputs: usize, bytes: Option<u64>) {
        progress::set_total(&self.0, bytes);
    }

    fn input(&self, done: usize, total: usize, name: &str) {
        self.0.set_message(format!("{done}/{total} inputs: {name}"));
    }

    fn skipped(&self, name: &str, digest: &str) {
        self.0.suspend(|| {
            eprintln!(
                "skipped {name}: already loaded (same content, {digest}); --force loads it again"
            )
        });
    }

    fn read(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn committed(&self, done: usize, total: usize, summary: &IngestSummary) {
        // Not inside `suspend`, which holds the bar's lock.
        let line = format!(
            "committed {done}/{total} inputs ({}): {}",
            HumanBytes(self.0.position()),
            describe(summary)
        );
        self.0.suspend(|| eprintln!("{line}"));
    }
}

/// The one-line summary an ingest ends with.
pub fn describe(s: &IngestSummary) -> String {
    let version = |v: Option<u64>| v.map_or("unchanged".to_string(), |v| format!("v{v}"));
    format!(
        "ingested: read {} appended {} quarantined {} files {} raw {} quarantine {}",
        s.read,
        s.appended,
        s.quarantined,
        s.raw_files + s.quarantine_files,
        version(s.raw_version),
        version(s.quarantine_version),
    )
}
