//! The ingest writer: records in, one Delta commit on `raw` (valid events) and one on
//! `quarantine` (everything else) out. Memory stays bounded: rows go to Parquet in batches
//! and files are finalized every `flush_rows`, while the commit waits until the end so a
//! failed ingest leaves no partial data visible.

use chrono::Utc;
use deltalake::kernel::Transaction;

use crate::batch::{QuarantineBatchBuilder, RawBatchBuilder, RowContext};
use crate::error::Result;
use crate::event::parse_event;
use crate::lake::Lake;
use crate::schema::Table;
use crate::sink::Sink;
use crate::source::SourceRecord;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Rows per Arrow batch handed to the Parquet writer.
    pub batch_rows: usize,
    /// Rows after which open Parquet files are finalized, bounding memory. Each flush
    /// writes at most one file per partition.
    pub flush_rows: usize,
    /// Written with the data in both commits (a Delta `txn` action), so a retried batch
    /// can be recognised (per Kinesis shard, in the Lambda of issue #3).
    pub app_transaction: Option<Transaction>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            batch_rows: 64 * 1024,
            flush_rows: 1_000_000,
            app_transaction: None,
        }
    }
}

/// What one ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestSummary {
    pub read: u64,
    pub appended: u64,
    pub quarantined: u64,
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
    summary: IngestSummary,
}

impl Ingestor {
    pub async fn open(lake: &Lake, options: IngestOptions) -> Result<Ingestor> {
        let (raw, quarantine) =
            tokio::try_join!(lake.open(Table::Raw), lake.open(Table::Quarantine))?;
        Ok(Ingestor {
            ingested_at_micros: Utc::now().timestamp_micros(),
            raw_rows: RawBatchBuilder::default(),
            quarantine_rows: QuarantineBatchBuilder::default(),
            raw: Sink::start(Table::Raw, raw, options.flush_rows)?,
            quarantine: Sink::start(Table::Quarantine, quarantine, options.flush_rows)?,
            options,
            summary: IngestSummary::default(),
        })
    }

    pub fn summary(&self) -> &IngestSummary {
        &self.summary
    }

    /// Adds one record: valid events to `raw`, everything else to `quarantine`.
    pub async fn push(&mut self, record: &SourceRecord<'_>) -> Result<()> {
        let ctx = RowContext {
            ingested_at_micros: self.ingested_at_micros,
            ingest_seq: self.summary.read as i64,
        };
        self.summary.read += 1;
        match parse_event(record.data) {
            Ok(event) => {
                self.raw_rows.append(&event, record, ctx);
                self.summary.appended += 1;
                if self.raw_rows.len() >= self.options.batch_rows {
                    self.raw.write(self.raw_rows.finish()?).await?;
                }
            }
            Err(rejection) => {
                self.quarantine_rows
                    .append(record, &rejection.to_string(), ctx);
                self.summary.quarantined += 1;
                if self.quarantine_rows.len() >= self.options.batch_rows {
                    self.quarantine
                        .write(self.quarantine_rows.finish()?)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Writes what is left and commits `raw`, then `quarantine`.
    pub async fn commit(mut self) -> Result<IngestSummary> {
        if !self.raw_rows.is_empty() {
            self.raw.write(self.raw_rows.finish()?).await?;
        }
        if !self.quarantine_rows.is_empty() {
            self.quarantine
                .write(self.quarantine_rows.finish()?)
                .await?;
        }
        let (raw_adds, quarantine_adds) =
            tokio::try_join!(self.raw.finish(), self.quarantine.finish())?;
        self.summary.raw_files = raw_adds.len();
        self.summary.quarantine_files = quarantine_adds.len();
        let txn = self.options.app_transaction.as_ref();
        self.summary.raw_version = self
            .raw
            .commit(raw_adds, txn, self.summary.appended)
            .await?;
        self.summary.quarantine_version = self
            .quarantine
            .commit(quarantine_adds, txn, self.summary.quarantined)
            .await?;
        Ok(self.summary)
    }
}
