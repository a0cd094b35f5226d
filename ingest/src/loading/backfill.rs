//! A backfill: inputs (stdin, files, local globs, `s3://` globs) into raw and quarantine,
//! each input once. An input both tables already hold is passed over unless forced (its
//! identity, [`crate::loading::load`]); the tables are committed each time `commit_every` bytes of
//! input (as stored) are read and at the end, so an interrupted backfill reruns from its
//! last commit. Stdin and other streams (pipes) have no identity and always append. The
//! CLI's `lakehouse ingest` drives it, and whoever watches it hears of each step
//! ([`Watcher`]).

use std::io::Read;
use std::path::PathBuf;

use lakehouse_lake::Lake;
use lakehouse_lake::app_ids::load_app_id;

use crate::decode::ahead::ParseAhead;
use crate::decode::source::JsonLines;
use crate::decode::{archive, kinesis};
use crate::error::{IngestError, Result};
use crate::loading::inputs::{self, DEFAULT_COMMIT_EVERY_BYTES, Input};
use crate::write::options::IngestOptions;
use crate::write::writer::{Destinations, IngestSummary, Ingestor};

/// What the inputs hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON Lines: one event per line.
    Jsonl,
    /// A Lambda Kinesis event document, decoded as the ingest Lambda decodes it.
    KinesisEvent,
}

impl Format {
    /// The format's name, part of an input's identity: the same bytes read as another
    /// format are another load.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::KinesisEvent => "kinesis-event",
        }
    }
}

/// How a backfill runs.
#[derive(Debug, Clone)]
pub struct Backfill {
    pub format: Format,
    /// Load inputs again even when both tables hold them.
    pub force: bool,
    /// Commit once this many bytes of input (as stored) are read, and at the end.
    pub commit_every: u64,
    pub options: IngestOptions,
}

impl Default for Backfill {
    fn default() -> Self {
        Backfill {
            format: Format::Jsonl,
            force: false,
            commit_every: DEFAULT_COMMIT_EVERY_BYTES,
            options: IngestOptions::default(),
        }
    }
}

/// What a backfill tells whoever watches it (the CLI's progress bar). Every method does
/// nothing unless implemented.
pub trait Watcher {
    /// The inputs are resolved: how many, and their bytes as stored when all are known.
    fn begin(&self, _inputs: usize, _bytes: Option<u64>) {}
    /// Input `done + 1` of `total` is next.
    fn input(&self, _done: usize, _total: usize, _name: &str) {}
    /// An input both tables hold was passed over, by its identity.
    fn skipped(&self, _name: &str, _digest: &str) {}
    /// `bytes` of input (as stored) are behind: read, or passed over.
    fn read(&self, _bytes: u64) {}
    /// The inputs up to `done` of `total` are committed: this group's summary.
    fn committed(&self, _done: usize, _total: usize, _summary: &IngestSummary) {}
}

/// Watches nothing.
impl Watcher for () {}

/// Loads `specs` (stdin for none or `-`) into `lake`: the summary of every commit.
pub async fn backfill(
    lake: &Lake,
    specs: &[PathBuf],
    how: &Backfill,
    watcher: &dyn Watcher,
) -> Result<IngestSummary> {
    let stdin = [PathBuf::from("-")];
    let specs = if specs.is_empty() { &stdin[..] } else { specs };
    let inputs = inputs::resolve(specs, lake).await?;
    watcher.begin(inputs.len(), inputs.iter().map(Input::size).sum());
    let mut total = IngestSummary::default();
    let mut ingestor = Ingestor::open(lake, how.options.clone()).await?;
    let mut uncommitted_bytes = 0u64;
    for (done, input) in inputs.iter().enumerate() {
        let (name, size) = (input.name(), input.size().unwrap_or(0));
        watcher.input(done, inputs.len(), &name);
        let digest = input.digest().await?;
        let into = match &digest {
            None => Destinations::ALL,
            Some(digest) => {
                let app_id = load_app_id(how.format.name(), digest);
                match ingestor.begin_load(&app_id, how.force).await? {
                    Some(into) => into,
                    None => {
                        watcher.skipped(&name, digest);
                        watcher.read(size);
                        continue;
                    }
                }
            }
        };
        // Off the runtime's threads: an object's reader blocks on the runtime.
        let (stored, check) = input.open_checked(digest.as_deref()).await?;
        let source = name.clone();
        let reader = tokio::task::spawn_blocking(move || archive::decoded(stored, &source))
            .await
            .map_err(|e| IngestError::Internal(format!("decoding {name}: {e}")))??;
        push_input(&mut ingestor, reader, &name, how, into).await?;
        // The load's identity stands for the bytes it read, or nothing is committed.
        if let Some(check) = check
            && let Err(read) = check.finish()
        {
            return Err(IngestError::Input(format!(
                "{name} changed while it was loaded (hashed {} before, {read} while \
                 loading): nothing of it was committed; run again to load it as it is now",
                digest.unwrap_or_default()
            )));
        }
        watcher.read(size);
        uncommitted_bytes = uncommitted_bytes.saturating_add(size);
        if uncommitted_bytes >= how.commit_every && done + 1 < inputs.len() {
            let summary = ingestor.commit().await?;
            watcher.committed(done + 1, inputs.len(), &summary);
            total = total.then(summary);
            ingestor = Ingestor::open(lake, how.options.clone()).await?;
            uncommitted_bytes = 0;
        }
    }
    Ok(total.then(ingestor.commit().await?))
}

async fn push_input(
    ingestor: &mut Ingestor,
    reader: Box<dyn std::io::BufRead + Send>,
    name: &str,
    how: &Backfill,
    into: Destinations,
) -> Result<()> {
    let max_record_bytes = how.options.max_record_bytes;
    match how.format {
        Format::Jsonl => {
            let lines = JsonLines::new(reader, name).with_max_record_bytes(max_record_bytes);
            let mut chunks = ParseAhead::start(lines, max_record_bytes)?;
            while let Some(chunk) = chunks.next_chunk()? {
                ingestor.push_chunk(&chunk, into).await?;
            }
        }
        Format::KinesisEvent => {
            // Off the runtime's threads: an object's reader blocks on the runtime.
            let mut reader = reader;
            let document = tokio::task::spawn_blocking(move || {
                let mut document = Vec::new();
                reader.read_to_end(&mut document).map(|_| document)
            })
            .await
            .map_err(|e| IngestError::Internal(format!("reading {name}: {e}")))?
            .map_err(|error| IngestError::Read {
                source_name: name.to_string(),
                error,
            })?;
            // The Lambda's decoder: KPL aggregates unpacked, the same lineage.
            let event = kinesis::parse_document(&document, name)?;
            ingestor.push_kinesis_document(&event, into).await?;
        }
    }
    Ok(())
}
