use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lakehouse_ingest::ahead::ParseAhead;
use lakehouse_ingest::load::{content_digest, load_app_id};
use lakehouse_ingest::source::JsonLines;
use lakehouse_ingest::{Destinations, IngestOptions, IngestSummary, Ingestor, kinesis};
use lakehouse_lake::Lake;

use crate::cli::InputFormat;
use crate::progress;

/// Ingests `files` (stdin for none or `-`) in one commit per table. A file both tables
/// already hold is skipped unless `force` (see `lakehouse_ingest::load`); stdin has no
/// identity and always appends.
pub async fn run(
    lake: Lake,
    format: InputFormat,
    files: &[PathBuf],
    force: bool,
    options: IngestOptions,
) -> Result<()> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    let max_record_bytes = options.max_record_bytes;
    let mut ingestor = Ingestor::open(&lake, options).await?;
    let bar = progress::counter("records");
    for path in files {
        let name = if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        let into = if path == Path::new("-") {
            Destinations::ALL
        } else {
            let digest = content_digest(open(path)?).with_context(|| format!("reading {name}"))?;
            let app_id = load_app_id(format.name(), &digest);
            match ingestor.begin_load(&app_id, force).await? {
                Some(into) => into,
                None => {
                    eprintln!(
                        "skipped {name}: already loaded (same content, sha256 {digest}); \
                         --force loads it again"
                    );
                    continue;
                }
            }
        };
        match format {
            InputFormat::Jsonl => {
                let lines =
                    JsonLines::new(open(path)?, name).with_max_record_bytes(max_record_bytes);
                let mut chunks = ParseAhead::start(lines, max_record_bytes)?;
                while let Some(chunk) = chunks.next_chunk()? {
                    ingestor.push_chunk(&chunk, into).await?;
                    bar.inc(chunk.len() as u64);
                }
            }
            InputFormat::KinesisEvent => {
                let mut document = Vec::new();
                open(path)?
                    .read_to_end(&mut document)
                    .with_context(|| format!("reading {name}"))?;
                // The Lambda's decoder: KPL aggregates unpacked, the same lineage.
                let event = kinesis::parse_document(&document, &name)?;
                let decoded = kinesis::push_document(&mut ingestor, &event, into).await?;
                bar.inc(decoded.user_records);
            }
        }
    }
    let summary = ingestor.commit().await?;
    bar.finish_and_clear();
    println!("{}", describe(&summary));
    Ok(())
}

fn open(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    const BUFFER: usize = 1 << 20;
    if path == Path::new("-") {
        return Ok(Box::new(BufReader::with_capacity(BUFFER, std::io::stdin())));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(BUFFER, file)))
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
