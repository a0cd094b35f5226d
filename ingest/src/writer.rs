//! The ingest writer: records in, one Delta commit on `raw` (valid events) and one on
//! `quarantine` (everything else) out. Memory stays bounded: rows go to Parquet in batches
//! and files are finalized every `flush_rows`, while the commit waits until the end so a
//! failed ingest leaves no partial data visible.

use chrono::Utc;
use deltalake::DeltaTable;
use deltalake::arrow::array::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use serde_json::json;

use crate::batch::{QuarantineBatchBuilder, RawBatchBuilder, RowContext};
use crate::error::Result;
use crate::event::parse_event;
use crate::lake::Lake;
use crate::schema::Table;
use crate::source::SourceRecord;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Rows per Arrow batch handed to the Parquet writer.
    pub batch_rows: usize,
    /// Rows after which open Parquet files are finalized, bounding memory. Each flush
    /// writes at most one file per partition.
    pub flush_rows: usize,
    /// Written with the data in both commits (a Delta `txn` action), so a retried batch
    /// can be recognised: see the Kinesis Lambda.
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

/// One table's side of an ingest: its rows being built, its writer and the files written.
struct Sink<B> {
    table: DeltaTable,
    writer: RecordBatchWriter,
    rows: B,
    unflushed: usize,
    adds: Vec<Add>,
}

impl<B> Sink<B> {
    fn new(kind: Table, table: DeltaTable, rows: B) -> Result<Self> {
        let writer =
            RecordBatchWriter::for_table(&table)?.with_writer_properties(kind.writer_properties());
        Ok(Sink {
            table,
            writer,
            rows,
            unflushed: 0,
            adds: Vec::new(),
        })
    }

    async fn write(&mut self, batch: RecordBatch, flush_rows: usize) -> Result<()> {
        self.unflushed += batch.num_rows();
        self.writer.write(batch).await?;
        if self.unflushed >= flush_rows {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        self.adds.extend(self.writer.flush().await?);
        self.unflushed = 0;
        Ok(())
    }

    /// Commits the files written, with `txn` when given. Nothing to commit, no commit.
    async fn commit(&mut self, txn: Option<&Transaction>, records: u64) -> Result<Option<u64>> {
        self.flush().await?;
        if self.adds.is_empty() && txn.is_none() {
            return Ok(None);
        }
        let mut properties = CommitProperties::default()
            .with_metadata([("lakehouse".to_string(), json!({ "records": records }))]);
        if let Some(txn) = txn {
            properties = properties.with_application_transaction(txn.clone());
        }
        let snapshot = self.table.snapshot()?;
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: Some(snapshot.metadata().partition_columns().to_vec()),
            predicate: None,
        };
        let actions = self.adds.drain(..).map(Action::Add).collect();
        let committed = CommitBuilder::from(properties)
            .with_actions(actions)
            .build(Some(snapshot), self.table.log_store(), operation)
            .await?;
        Ok(Some(committed.version()))
    }
}

/// Streams records into one commit per table. Call [`Ingestor::push`] for every record,
/// then [`Ingestor::commit`]; dropping it uncommitted leaves only unreferenced files,
/// which `vacuum` removes.
pub struct Ingestor {
    options: IngestOptions,
    ingested_at_micros: i64,
    raw: Sink<RawBatchBuilder>,
    quarantine: Sink<QuarantineBatchBuilder>,
    summary: IngestSummary,
}

impl Ingestor {
    pub async fn open(lake: &Lake, options: IngestOptions) -> Result<Ingestor> {
        let (raw, quarantine) =
            tokio::try_join!(lake.open(Table::Raw), lake.open(Table::Quarantine))?;
        Ok(Ingestor {
            options,
            ingested_at_micros: Utc::now().timestamp_micros(),
            raw: Sink::new(Table::Raw, raw, RawBatchBuilder::default())?,
            quarantine: Sink::new(
                Table::Quarantine,
                quarantine,
                QuarantineBatchBuilder::default(),
            )?,
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
                self.raw.rows.append(&event, record, ctx);
                self.summary.appended += 1;
                if self.raw.rows.len() >= self.options.batch_rows {
                    let batch = self.raw.rows.finish()?;
                    self.raw.write(batch, self.options.flush_rows).await?;
                }
            }
            Err(rejection) => {
                self.quarantine
                    .rows
                    .append(record, &rejection.to_string(), ctx);
                self.summary.quarantined += 1;
                if self.quarantine.rows.len() >= self.options.batch_rows {
                    let batch = self.quarantine.rows.finish()?;
                    self.quarantine
                        .write(batch, self.options.flush_rows)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Writes what is left and commits `raw`, then `quarantine`.
    pub async fn commit(mut self) -> Result<IngestSummary> {
        if !self.raw.rows.is_empty() {
            let batch = self.raw.rows.finish()?;
            self.raw.write(batch, usize::MAX).await?;
        }
        if !self.quarantine.rows.is_empty() {
            let batch = self.quarantine.rows.finish()?;
            self.quarantine.write(batch, usize::MAX).await?;
        }
        let txn = self.options.app_transaction.as_ref();
        self.raw.flush().await?;
        self.quarantine.flush().await?;
        self.summary.raw_files = self.raw.adds.len();
        self.summary.quarantine_files = self.quarantine.adds.len();
        self.summary.raw_version = self.raw.commit(txn, self.summary.appended).await?;
        self.summary.quarantine_version = self
            .quarantine
            .commit(txn, self.summary.quarantined)
            .await?;
        Ok(self.summary)
    }
}
