use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use lakehouse_ingest::kinesis;
use lakehouse_ingest::source::JsonLines;
use lakehouse_ingest::{IngestOptions, IngestSummary, Ingestor};
use lakehouse_lake::Lake;

use crate::cli::InputFormat;
use crate::progress;

pub async fn run(lake: &str, format: InputFormat, files: &[PathBuf]) -> Result<()> {
    let lake = Lake::parse(lake)?;
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    let mut ingestor = Ingestor::open(&lake, IngestOptions::default()).await?;
    let bar = progress::counter("records");
    for path in files {
        let name = if path == Path::new("-") {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        match format {
            InputFormat::Jsonl => {
                let mut lines = JsonLines::new(open(path)?, name);
                while let Some(record) = lines.next_record()? {
                    ingestor.push(&record).await?;
                    bar.inc(1);
                }
            }
            InputFormat::KinesisEvent => {
                let mut document = Vec::new();
                open(path)?
                    .read_to_end(&mut document)
                    .with_context(|| format!("reading {name}"))?;
                // The Lambda's decoder: KPL aggregates unpacked, the same lineage.
                let event = kinesis::parse_document(&document, &name)?;
                let decoded = kinesis::push_document(&mut ingestor, &event).await?;
                bar.inc(decoded.user_records);
            }
        }
    }
    let summary = ingestor.commit().await?;
    bar.finish_and_clear();
    println!("{}", describe(&summary));
    Ok(())
}

fn open(path: &Path) -> Result<Box<dyn BufRead>> {
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
