use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::HumanBytes;
use lakehouse_ingest::DEFAULT_BUFFER_BYTES;
use lakehouse_ingest::ahead::ParseAhead;
use lakehouse_ingest::event::MAX_RECORD_BYTES_LIMIT;
use lakehouse_ingest::inputs::DEFAULT_COMMIT_EVERY_BYTES;
use lakehouse_ingest::inputs::{self, Input};
use lakehouse_ingest::source::JsonLines;
use lakehouse_ingest::{Destinations, IngestOptions, IngestSummary, Ingestor, archive, kinesis};
use lakehouse_lake::Lake;
use lakehouse_lake::app_ids::load_app_id;

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
        default_value_t = DEFAULT_COMMIT_EVERY_BYTES >> 20,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub commit_every_mb: u64,
    /// Load files again even when their content is already in the lake.
    #[arg(long)]
    pub force: bool,
    /// A record longer than this is quarantined as too large, with its first 4 KiB.
    #[arg(
        long,
        default_value_t = IngestOptions::default().max_record_bytes as u64,
        value_parser = clap::value_parser!(u64).range(1..=MAX_RECORD_BYTES_LIMIT as u64)
    )]
    pub max_record_bytes: u64,
    /// MiB of rows each table holds before writing files: the ingest's memory. Less
    /// makes more, smaller files when an input spans many partitions.
    #[arg(
        long,
        default_value_t = (DEFAULT_BUFFER_BYTES >> 20) as u64,
        value_parser = clap::value_parser!(u64).range(1..=65_536)
    )]
    pub buffer_mb: u64,
}

/// Ingests `specs` (stdin for none or `-`; files, local globs, `s3://` globs), committing
/// each table once at least `commit_every` bytes of input (as stored) are read and at the
/// end. An input both tables already hold is skipped unless `force` (see
/// `lakehouse_ingest::load`), so an interrupted backfill reruns from its last commit;
/// stdin and other streams (pipes) have no identity and always append.
pub async fn run(args: IngestArgs) -> Result<()> {
    let options = IngestOptions {
        // Bounded by the arguments' parsers to 1 GiB and 64 GiB.
        max_record_bytes: usize::try_from(args.max_record_bytes).unwrap_or(usize::MAX),
        buffer_bytes: usize::try_from(args.buffer_mb << 20).unwrap_or(usize::MAX),
        ..IngestOptions::default()
    };
    let lake = Lake::parse(&args.lake.lake)?.with_raw_layout(args.layout.raw_layout.into());
    let commit_every = args.commit_every_mb.saturating_mul(1 << 20);
    load(
        lake,
        args.format,
        &args.files,
        args.force,
        commit_every,
        options,
    )
    .await
}

/// Loads `specs` (see [`run`]).
pub async fn load(
    lake: Lake,
    format: InputFormat,
    specs: &[PathBuf],
    force: bool,
    commit_every: u64,
    options: IngestOptions,
) -> Result<()> {
    let stdin = [PathBuf::from("-")];
    let specs = if specs.is_empty() { &stdin[..] } else { specs };
    let inputs = inputs::resolve(specs, &lake).await?;
    let total_bytes = inputs.iter().map(Input::size).sum::<Option<u64>>();
    let bar = progress::inputs(total_bytes);
    let mut total = IngestSummary::default();
    let mut ingestor = Ingestor::open(&lake, options.clone()).await?;
    let mut uncommitted_bytes = 0u64;
    for (done, input) in inputs.iter().enumerate() {
        let (name, size) = (input.name(), input.size().unwrap_or(0));
        bar.set_message(format!("{done}/{} inputs: {name}", inputs.len()));
        let digest = input.digest().await?;
        let into = match &digest {
            None => Destinations::ALL,
            Some(digest) => {
                let app_id = load_app_id(format.name(), digest);
                match ingestor.begin_load(&app_id, force).await? {
                    Some(into) => into,
                    None => {
                        bar.suspend(|| {
                            eprintln!(
                                "skipped {name}: already loaded (same content, {digest}); \
                                 --force loads it again"
                            )
                        });
                        bar.inc(size);
                        continue;
                    }
                }
            }
        };
        // Off the runtime's threads: an object's reader blocks on the runtime.
        let (stored, check) = input.open_checked(digest.as_deref()).await?;
        let source = name.clone();
        let reader =
            tokio::task::spawn_blocking(move || archive::decoded(stored, &source)).await??;
        push_input(&mut ingestor, reader, &name, format, into, &options).await?;
        // The load's identity stands for the bytes it read, or nothing is committed.
        if let Some(check) = check
            && let Err(read) = check.finish()
        {
            bail!(
                "{name} changed while it was loaded (hashed {} before, {read} while \
                 loading): nothing of it was committed; run again to load it as it is now",
                digest.unwrap_or_default()
            );
        }
        bar.inc(size);
        uncommitted_bytes = uncommitted_bytes.saturating_add(size);
        if uncommitted_bytes >= commit_every && done + 1 < inputs.len() {
            let summary = ingestor.commit().await?;
            // Not inside `suspend`, which holds the bar's lock.
            let line = format!(
                "committed {}/{} inputs ({}): {}",
                done + 1,
                inputs.len(),
                HumanBytes(bar.position()),
                describe(&summary)
            );
            bar.suspend(|| eprintln!("{line}"));
            add(&mut total, summary);
            ingestor = Ingestor::open(&lake, options.clone()).await?;
            uncommitted_bytes = 0;
        }
    }
    add(&mut total, ingestor.commit().await?);
    bar.finish_and_clear();
    outln!("{}", describe(&total));
    Ok(())
}

async fn push_input(
    ingestor: &mut Ingestor,
    reader: Box<dyn std::io::BufRead + Send>,
    name: &str,
    format: InputFormat,
    into: Destinations,
    options: &IngestOptions,
) -> Result<()> {
    match format {
        InputFormat::Jsonl => {
            let lines =
                JsonLines::new(reader, name).with_max_record_bytes(options.max_record_bytes);
            let mut chunks = ParseAhead::start(lines, options.max_record_bytes)?;
            while let Some(chunk) = chunks.next_chunk()? {
                ingestor.push_chunk(&chunk, into).await?;
            }
        }
        InputFormat::KinesisEvent => {
            // Off the runtime's threads: an object's reader blocks on the runtime.
            let mut reader = reader;
            let document = tokio::task::spawn_blocking(move || {
                let mut document = Vec::new();
                reader.read_to_end(&mut document).map(|_| document)
            })
            .await?
            .with_context(|| format!("reading {name}"))?;
            // The Lambda's decoder: KPL aggregates unpacked, the same lineage.
            let event = kinesis::parse_document(&document, name)?;
            kinesis::push_document(ingestor, &event, into).await?;
        }
    }
    Ok(())
}

/// Sums the commits of one run; the versions are the last ones committed.
fn add(total: &mut IngestSummary, s: IngestSummary) {
    total.read += s.read;
    total.already_committed += s.already_committed;
    total.appended += s.appended;
    total.quarantined += s.quarantined;
    total.inputs_already_loaded += s.inputs_already_loaded;
    total.raw_files += s.raw_files;
    total.quarantine_files += s.quarantine_files;
    total.raw_version = s.raw_version.or(total.raw_version);
    total.quarantine_version = s.quarantine_version.or(total.quarantine_version);
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
