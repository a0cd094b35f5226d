//! The ingest writer: records in, one Delta commit on `raw` (valid events) and one on
//! `quarantine` (everything else) out. Memory stays bounded: rows go to Parquet in batches
//! and files are finalized every `flush_rows`, while the commit waits until the end so a
//! failed ingest leaves no partial data visible.

use chrono::Utc;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use lakehouse_lake::{CommitMetadata, Committed, Lake, Table};

use crate::batch::{QuarantineBatchBuilder, RawBatchBuilder, RowContext};
use crate::error::Result;
use crate::event::{MAX_RECORD_BYTES, QUARANTINED_PREFIX_BYTES, parse_event, too_large};
use crate::sink::{PreparedAppend, Sink};
use crate::source::SourceRecord;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Rows per Arrow batch handed to the Parquet writer.
    pub batch_rows: usize,
    /// Bytes of record data per Arrow batch: a batch ends at whichever limit comes first,
    /// so its string offsets (2 GiB at most) can never overflow.
    pub batch_bytes: usize,
    /// Rows after which open Parquet files are finalized, bounding memory. Each flush
    /// writes at most one file per partition.
    pub flush_rows: usize,
    /// Bytes of Arrow data after which open Parquet files are finalized, likewise.
    pub flush_bytes: usize,
    /// Partitions with an open Parquet file at once: an input spanning more (thousands of
    /// event types) finalizes its open files first, trading more files for bounded memory.
    pub max_open_partitions: usize,
    /// A record longer than this is quarantined as too large (see
    /// [`crate::event::MAX_RECORD_BYTES`]).
    pub max_record_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            batch_rows: 64 * 1024,
            batch_bytes: 64 << 20,
            flush_rows: 1_000_000,
            flush_bytes: 256 << 20,
            max_open_partitions: 512,
            max_record_bytes: MAX_RECORD_BYTES,
        }
    }
}

/// What one ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestSummary {
    pub read: u64,
    /// Records left out because their table already holds them (a redelivered batch).
    pub already_committed: u64,
    pub appended: u64,
    pub quarantined: u64,
    /// Inputs left out whole because both tables already hold them (see [`crate::load`]).
    pub inputs_already_loaded: u64,
    pub raw_files: usize,
    pub quarantine_files: usize,
    /// New table versions; `None` where nothing was committed.
    pub raw_version: Option<u64>,
    pub quarantine_version: Option<u64>,
}

/// Streams records into one commit per table. Call [`Ingestor::push`] for every record,
/// then [`Ingestor::commit`]; dropping it uncommitted leaves only unreferenced files,
/// which `compact --vacuum-full` removes.
pub struct Ingestor {
    options: IngestOptions,
    ingested_at_micros: i64,
    raw_rows: RawBatchBuilder,
    quarantine_rows: QuarantineBatchBuilder,
    raw: Sink,
    quarantine: Sink,
    /// Loads each table records with its commit (see [`crate::load`]).
    raw_loads: Vec<Transaction>,
    quarantine_loads: Vec<Transaction>,
    summary: IngestSummary,
}

impl Ingestor {
    pub async fn open(lake: &Lake, options: IngestOptions) -> Result<Ingestor> {
        let (raw, quarantine) =
            tokio::try_join!(lake.open(Table::Raw), lake.open(Table::Quarantine))?;
        Ingestor::with_tables(raw, quarantine, options)
    }

    /// Writes into tables the caller already holds open (a warm Lambda keeps them).
    pub fn with_tables(
        raw: DeltaTable,
        quarantine: DeltaTable,
        options: IngestOptions,
    ) -> Result<Ingestor> {
        Ok(Ingestor {
            ingested_at_micros: Utc::now().timestamp_micros(),
            raw_rows: RawBatchBuilder::default(),
            quarantine_rows: QuarantineBatchBuilder::default(),
            raw: Sink::start(Table::Raw, raw, &options)?,
            quarantine: Sink::start(Table::Quarantine, quarantine, &options)?,
            options,
            raw_loads: Vec::new(),
            quarantine_loads: Vec::new(),
            summary: IngestSummary::default(),
        })
    }

    /// Starts loading the input recorded under `app_id` (see [`crate::load`]): where each
    /// table should take its records, and each table's record of the load goes into its
    /// commit. `None` when both tables already hold it (nothing to read), unless `force`,
    /// which loads it again everywhere.
    pub async fn begin_load(&mut self, app_id: &str, force: bool) -> Result<Option<Destinations>> {
        let (raw, quarantine) = tokio::try_join!(
            self.raw.loaded_version(app_id),
            self.quarantine.loaded_version(app_id)
        )?;
        let noted = |loads: &[Transaction]| loads.iter().any(|t| t.app_id == app_id);
        if noted(&self.raw_loads)
            || noted(&self.quarantine_loads)
            || (!force && raw.is_some() && quarantine.is_some())
        {
            self.summary.inputs_already_loaded += 1;
            return Ok(None);
        }
        let into = Destinations {
            raw: force || raw.is_none(),
            quarantine: force || quarantine.is_none(),
        };
        let next = |version: Option<i64>| Transaction::new(app_id, version.map_or(1, |v| v + 1));
        if into.raw {
            self.raw_loads.push(next(raw));
        }
        if into.quarantine {
            self.quarantine_loads.push(next(quarantine));
        }
        Ok(Some(into))
    }

    pub fn summary(&self) -> &IngestSummary {
        &self.summary
    }

    /// Adds one record: valid events to `raw`, everything else to `quarantine`.
    pub async fn push(&mut self, record: &SourceRecord<'_>) -> Result<()> {
        self.push_to(record, Destinations::ALL).await
    }

    /// Like [`Ingestor::push`], leaving the record out where `into` says its table already
    /// holds it.
    pub async fn push_to(&mut self, record: &SourceRecord<'_>, into: Destinations) -> Result<()> {
        if record.data.len() > self.options.max_record_bytes {
            // Quarantined by its first bytes only: what is it is not worth holding it all.
            let kept = SourceRecord {
                data: &record.data[..QUARANTINED_PREFIX_BYTES.min(record.data.len())],
                ..*record
            };
            let reason = too_large(self.options.max_record_bytes);
            return self.reject(&kept, &reason, into).await;
        }
        match parse_event(record.data) {
            Ok(event) if into.raw => {
                let ctx = self.next_row();
                self.raw_rows.append(&event, record, ctx);
                self.summary.appended += 1;
                if self.raw_rows.len() >= self.options.batch_rows
                    || self.raw_rows.bytes() >= self.options.batch_bytes
                {
                    self.raw.write(self.raw_rows.finish()?).await?;
                }
                Ok(())
            }
            Ok(_) => {
                self.skip();
                Ok(())
            }
            Err(rejection) => self.reject(record, &rejection.to_string(), into).await,
        }
    }

    /// Sends a record to `quarantine` with `reason`, without parsing it (a corrupt
    /// container, for instance).
    pub async fn reject(
        &mut self,
        record: &SourceRecord<'_>,
        reason: &str,
        into: Destinations,
    ) -> Result<()> {
        if !into.quarantine {
            self.skip();
            return Ok(());
        }
        let ctx = self.next_row();
        self.quarantine_rows.append(record, reason, ctx);
        self.summary.quarantined += 1;
        if self.quarantine_rows.len() >= self.options.batch_rows
            || self.quarantine_rows.bytes() >= self.options.batch_bytes
        {
            self.quarantine
                .write(self.quarantine_rows.finish()?)
                .await?;
        }
        Ok(())
    }

    fn next_row(&mut self) -> RowContext {
        let ctx = RowContext {
            ingested_at_micros: self.ingested_at_micros,
            ingest_seq: self.summary.read as i64,
        };
        self.summary.read += 1;
        ctx
    }

    fn skip(&mut self) {
        self.summary.read += 1;
        self.summary.already_committed += 1;
    }

    /// Writes what is left and finalizes every file, committing nothing yet.
    pub async fn prepare(mut self) -> Result<PreparedIngest> {
        if !self.raw_rows.is_empty() {
            self.raw.write(self.raw_rows.finish()?).await?;
        }
        if !self.quarantine_rows.is_empty() {
            self.quarantine
                .write(self.quarantine_rows.finish()?)
                .await?;
        }
        let (raw, quarantine) = tokio::try_join!(
            self.raw.prepare(self.summary.appended),
            self.quarantine.prepare(self.summary.quarantined)
        )?;
        self.summary.raw_files = raw.files();
        self.summary.quarantine_files = quarantine.files();
        Ok(PreparedIngest {
            raw,
            quarantine,
            raw_loads: self.raw_loads,
            quarantine_loads: self.quarantine_loads,
            summary: self.summary,
        })
    }

    /// Writes what is left and commits `raw`, then `quarantine`.
    pub async fn commit(self) -> Result<IngestSummary> {
        let prepared = self.prepare().await?;
        let mut summary = prepared.summary;
        let committed = |c: Option<Committed>| c.map(|c| c.version);
        summary.raw_version = committed(
            prepared
                .raw
                .commit(
                    &prepared.raw_loads,
                    CommitMetadata::records(summary.appended),
                )
                .await?,
        );
        summary.quarantine_version = committed(
            prepared
                .quarantine
                .commit(
                    &prepared.quarantine_loads,
                    CommitMetadata::records(summary.quarantined),
                )
                .await?,
        );
        Ok(summary)
    }
}

/// Which tables take a record: a redelivered Kinesis batch skips a table that already
/// holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destinations {
    pub raw: bool,
    pub quarantine: bool,
}

impl Destinations {
    pub const ALL: Destinations = Destinations {
        raw: true,
        quarantine: true,
    };
}

/// Both tables' files, written and not yet committed.
pub struct PreparedIngest {
    pub raw: PreparedAppend,
    pub quarantine: PreparedAppend,
    /// The loads each table records with its commit.
    pub raw_loads: Vec<Transaction>,
    pub quarantine_loads: Vec<Transaction>,
    pub summary: IngestSummary,
}
