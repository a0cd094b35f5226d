//! Exactly-once ingest of Lambda Kinesis batches, per shard.
//!
//! For each table and shard, a DynamoDB checkpoint holds the last sequence number committed
//! and the Delta `txn` version that committed it (see [`crate::checkpoint`]). A batch
//! writes only records after the checkpoint, so a redelivered batch adds nothing; every
//! record of a batch is reported failed from the first one not committed, so Lambda
//! retries exactly the tail that is missing.
//!
//! In grouped mode ([`StreamIngest::grouped`]) the shard's checkpoint is its latest manifest
//! in the table's manifest log instead, and the files are handed over to the table's
//! committer rather than committed (see `lakehouse_ingest::manifest_log`).
//!
//! Assumes what Lambda's Kinesis event source mapping guarantees with
//! `ParallelizationFactor = 1`: one batch per shard at a time, in sequence order; a batch
//! found out of order fails (see [`crate::order`]).

use std::sync::Arc;

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use deltalake::DeltaTable;
use lakehouse_ingest::kinesis::{self, KinesisEvent, KinesisEventRecord};
use lakehouse_ingest::manifest_log::ManifestLog;
use lakehouse_ingest::{Destinations, IngestError, IngestOptions, Ingestor};
use lakehouse_lake::{Lake, Table};
use tracing::warn;

use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::direct::Direct;
use crate::error::StreamError;
use crate::grouped::Grouped;
use crate::order::check_order;
use crate::progress::{BatchReport, ShardProgress, TableState};
use crate::sequence::SequenceNumber;

/// The ingest Lambda's state, kept warm across invocations: tables stay loaded and are
/// brought up to date incrementally rather than replayed from their last checkpoint.
pub struct StreamIngest {
    lake: Lake,
    progress: Box<dyn ShardProgress>,
    options: IngestOptions,
    raw: Option<DeltaTable>,
    quarantine: Option<DeltaTable>,
}

/// One shard's slice of a batch, in sequence order.
struct ShardRecords<'a> {
    stream: &'a str,
    shard: &'a str,
    records: Vec<(SequenceNumber, &'a KinesisEventRecord)>,
}

impl StreamIngest {
    /// Direct mode: every invocation commits its own files.
    pub fn new(lake: Lake, checkpoints: CheckpointStore, options: IngestOptions) -> Self {
        StreamIngest {
            lake,
            progress: Box::new(Direct(checkpoints)),
            options,
            raw: None,
            quarantine: None,
        }
    }

    /// Grouped mode: every invocation hands its files over through the tables' manifest
    /// logs, for their committers.
    pub fn grouped(
        lake: Lake,
        raw: Arc<dyn ManifestLog>,
        quarantine: Arc<dyn ManifestLog>,
        options: IngestOptions,
    ) -> Self {
        StreamIngest {
            lake,
            progress: Box::new(Grouped { raw, quarantine }),
            options,
            raw: None,
            quarantine: None,
        }
    }

    /// Ingests a batch. Never fails as a whole: a shard that could not be committed is
    /// reported in `batchItemFailures` from its first uncommitted record.
    pub async fn ingest(&mut self, event: &KinesisEvent) -> (KinesisEventResponse, BatchReport) {
        let mut report = BatchReport::default();
        let mut failures = Vec::new();
        match group_by_shard(&event.records) {
            Err(e) => {
                // Cannot even tell records apart: fail the batch, from the first record.
                warn!(error = %e, "unreadable batch");
                report.failed_shards += 1;
                failures.extend(event.records.first().map(failure));
            }
            Ok(shards) => {
                for shard in shards {
                    let mut states = None;
                    let result = self.ingest_shard(&shard, &mut states, &mut report).await;
                    if let Err(e) = result {
                        warn!(stream = shard.stream, shard = shard.shard, error = %e, "shard batch failed");
                        report.failed_shards += 1;
                        self.raw = None;
                        self.quarantine = None;
                        if let Some(first) = first_uncommitted(&shard, states.as_deref()) {
                            failures.push(failure(first));
                        }
                    }
                }
            }
        }
        let response = KinesisEventResponse {
            batch_item_failures: failures,
        };
        (response, report)
    }

    async fn ingest_shard<'a>(
        &mut self,
        shard: &ShardRecords<'a>,
        states: &mut Option<Vec<TableState>>,
        report: &mut BatchReport,
    ) -> Result<(), StreamError> {
        let (raw, quarantine) = self.tables().await?;
        let mut loaded = Vec::with_capacity(2);
        for (table, delta) in [(Table::Raw, &raw), (Table::Quarantine, &quarantine)] {
            let source = format!("{}/{}", shard.stream, shard.shard);
            let key = format!("{}|{source}", self.lake.table_url(table));
            let app_id = lakehouse_lake::app_ids::ingest_app_id(&source);
            let state = self
                .progress
                .load(table, delta, key, app_id, report)
                .await?;
            let sequences = shard.records.iter().map(|(s, _)| s);
            check_order(delta, &state.app_id, &state.checkpoint, sequences).await?;
            loaded.push(state);
        }
        let states = states.insert(loaded);

        let mut ingestor = Ingestor::with_tables(raw, quarantine, self.options.clone())?;
        let source = kinesis::source_name(shard.stream, shard.shard);
        for (sequence, record) in &shard.records {
            let into = Destinations {
                raw: is_new(&states[0].checkpoint, sequence),
                quarantine: is_new(&states[1].checkpoint, sequence),
            };
            push_record(&mut ingestor, &source, record, into, report).await?;
        }
        let prepared = ingestor.prepare().await?;
        let summary = &prepared.summary;
        report.appended += summary.appended;
        report.quarantined += summary.quarantined;
        report.already_committed += summary.already_committed;

        let Some((last, _)) = shard.records.last() else {
            return Ok(());
        };
        let first = &shard.records[0].0;
        for (state, append) in states.iter_mut().zip([&prepared.raw, &prepared.quarantine]) {
            // Nothing new for this table: nothing to land.
            if append.rows() > 0 {
                self.progress
                    .land(state, append, first, last, report)
                    .await?;
            }
        }
        Ok(())
    }

    /// Both tables at their latest version: opened once per process, then updated.
    async fn tables(&mut self) -> Result<(DeltaTable, DeltaTable), IngestError> {
        let raw = refresh(&self.lake, self.raw.take(), Table::Raw).await?;
        let quarantine = refresh(&self.lake, self.quarantine.take(), Table::Quarantine).await?;
        self.raw = Some(raw.clone());
        self.quarantine = Some(quarantine.clone());
        Ok((raw, quarantine))
    }
}

async fn refresh(
    lake: &Lake,
    cached: Option<DeltaTable>,
    table: Table,
) -> Result<DeltaTable, IngestError> {
    match cached {
        Some(mut delta) => {
            delta.update_incremental(None).await?;
            Ok(delta)
        }
        None => Ok(lake.open(table).await?),
    }
}

fn is_new(checkpoint: &Checkpoint, sequence: &SequenceNumber) -> bool {
    checkpoint
        .sequence
        .as_ref()
        .is_none_or(|done| sequence > done)
}

/// Adds one Kinesis record through the shared decoder, counting what it carried.
async fn push_record(
    ingestor: &mut Ingestor,
    source: &str,
    record: &KinesisEventRecord,
    into: Destinations,
    report: &mut BatchReport,
) -> Result<(), IngestError> {
    let decoded = ingestor.push_kinesis(record, source, into).await?;
    report.records += 1;
    report.bytes += decoded.bytes;
    report.user_records += decoded.user_records;
    Ok(())
}

/// Splits a batch by shard, keeping order. An event source mapping sends one shard per
/// batch; a hand-made document may mix them.
fn group_by_shard(records: &[KinesisEventRecord]) -> Result<Vec<ShardRecords<'_>>, StreamError> {
    let mut shards: Vec<ShardRecords> = Vec::new();
    for record in records {
        let (stream, shard) = kinesis::origin(record);
        let sequence =
            SequenceNumber::parse(&record.kinesis.sequence_number).map_err(|reason| {
                StreamError::BadRecord {
                    event_id: record.event_id.clone().unwrap_or_default(),
                    reason,
                }
            })?;
        match shards
            .iter_mut()
            .find(|s| s.stream == stream && s.shard == shard)
        {
            Some(s) => s.records.push((sequence, record)),
            None => shards.push(ShardRecords {
                stream,
                shard,
                records: vec![(sequence, record)],
            }),
        }
    }
    for shard in &mut shards {
        // Delivered in order; sorting only guards the checkpoint against a shuffled document.
        shard.records.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(shards)
}

/// The first record not yet in every table: everything from it on is retried.
fn first_uncommitted<'a>(
    shard: &ShardRecords<'a>,
    states: Option<&[TableState]>,
) -> Option<&'a KinesisEventRecord> {
    let committed_through = states.and_then(|states| {
        states
            .iter()
            .map(|s| s.checkpoint.sequence.clone())
            .min()
            .flatten()
    });
    shard
        .records
        .iter()
        .find(|(sequence, _)| {
            committed_through
                .as_ref()
                .is_none_or(|done| sequence > done)
        })
        .map(|(_, record)| *record)
}

fn failure(record: &KinesisEventRecord) -> KinesisBatchItemFailure {
    KinesisBatchItemFailure {
        item_identifier: Some(record.kinesis.sequence_number.clone()),
    }
}
