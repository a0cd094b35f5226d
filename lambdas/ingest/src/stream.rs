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
use std::time::Instant;

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use lakehouse_ingest::kinesis::{self, KinesisEvent, KinesisEventRecord};
use lakehouse_ingest::manifest::Manifest;
use lakehouse_ingest::manifest_log::{HandOver, ManifestLog, hand_over_files};
use lakehouse_ingest::{Destinations, IngestError, IngestOptions, Ingestor, PreparedAppend};
use lakehouse_lake::log::txn_version;
use lakehouse_lake::{CommitMetadata, Lake, Table};
use tracing::{info, warn};

use crate::checkpoint::{
    Checkpoint, CheckpointError, CheckpointStore, Pending, Reconciled, reconcile,
};
use crate::error::StreamError;
use crate::order::{check_order, last_span};
use crate::sequence::SequenceNumber;

/// What one invocation did, for logs and metrics.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct BatchReport {
    pub records: u64,
    pub user_records: u64,
    pub bytes: u64,
    pub appended: u64,
    pub quarantined: u64,
    pub already_committed: u64,
    pub commits: u64,
    /// Grouped mode: manifests handed over to the tables' committers.
    pub handed_over: u64,
    pub commit_millis: f64,
    pub commit_retries: u64,
    pub repaired_checkpoints: u64,
    pub failed_shards: u64,
}

/// The ingest Lambda's state, kept warm across invocations: tables stay loaded and are
/// brought up to date incrementally rather than replayed from their last checkpoint.
pub struct StreamIngest {
    lake: Lake,
    mode: Mode,
    options: IngestOptions,
    raw: Option<DeltaTable>,
    quarantine: Option<DeltaTable>,
}

/// How a shard's batch reaches its tables.
enum Mode {
    /// Each invocation commits; checkpoints in DynamoDB.
    Direct(CheckpointStore),
    /// Each invocation hands its files over to each table's committer.
    Grouped {
        raw: Arc<dyn ManifestLog>,
        quarantine: Arc<dyn ManifestLog>,
    },
}

/// One shard's slice of a batch, in sequence order.
struct ShardRecords<'a> {
    stream: &'a str,
    shard: &'a str,
    records: Vec<(SequenceNumber, &'a KinesisEventRecord)>,
}

/// One table's side of a shard: its checkpoint key, Delta app id and checkpoint.
struct TableState {
    table: Table,
    key: String,
    app_id: String,
    checkpoint: Checkpoint,
}

impl StreamIngest {
    /// Direct mode: every invocation commits its own files.
    pub fn new(lake: Lake, checkpoints: CheckpointStore, options: IngestOptions) -> Self {
        StreamIngest {
            lake,
            mode: Mode::Direct(checkpoints),
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
            mode: Mode::Grouped { raw, quarantine },
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
            let state = self.load_state(table, delta, shard, report).await?;
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
            self.commit_table(state, append, first, last, report)
                .await?;
        }
        Ok(())
    }

    /// Begins the checkpoint, commits the table's files with the shard's txn, completes the
    /// checkpoint. Nothing new for this table: nothing to do.
    async fn commit_table(
        &self,
        state: &mut TableState,
        append: &PreparedAppend,
        first: &SequenceNumber,
        last: &SequenceNumber,
        report: &mut BatchReport,
    ) -> Result<(), StreamError> {
        if append.rows() == 0 {
            return Ok(());
        }
        let checkpoints = match &self.mode {
            Mode::Direct(checkpoints) => checkpoints,
            Mode::Grouped { raw, quarantine } => {
                let log = pick(state.table, raw, quarantine);
                return self
                    .hand_over(log, state, append, first, last, report)
                    .await;
            }
        };
        let pending = Pending {
            sequence: last.clone(),
            version: state.checkpoint.version + 1,
            first: Some(first.clone()),
        };
        checkpoints
            .begin(&state.key, &state.checkpoint, &pending)
            .await?;
        let txn = Transaction::new(&state.app_id, pending.version);
        let started = Instant::now();
        let metadata = CommitMetadata {
            records: Some(append.rows()),
            source: Some(state.app_id.clone()),
            first_sequence_number: Some(first.to_string()),
            last_sequence_number: Some(last.to_string()),
            ..CommitMetadata::default()
        };
        let committed = append.commit(std::slice::from_ref(&txn), metadata).await?;
        report.commit_millis += started.elapsed().as_secs_f64() * 1000.0;
        report.commits += 1;
        if let Some(c) = committed {
            report.commit_retries += c.retries;
            info!(
                table = state.table.name(),
                version = c.version,
                rows = append.rows(),
                retries = c.retries,
                "committed"
            );
        }
        let from = state.checkpoint.version;
        state.checkpoint = Checkpoint {
            sequence: Some(pending.sequence.clone()),
            version: pending.version,
            first: pending.first.clone(),
            pending: None,
        };
        // The data is committed with its txn whatever happens next: if this write fails,
        // the next invocation finds the pending version in the log and completes it.
        if let Err(e) = checkpoints.complete(&state.key, from, &pending).await {
            warn!(key = state.key, error = %e, "checkpoint not completed; the next batch repairs it");
        }
        Ok(())
    }

    /// Grouped mode: hands the table's files over as the shard's next version. Stored, the
    /// batch is the shard's for good: the manifest is its checkpoint.
    async fn hand_over(
        &self,
        log: &dyn ManifestLog,
        state: &mut TableState,
        append: &PreparedAppend,
        first: &SequenceNumber,
        last: &SequenceNumber,
        report: &mut BatchReport,
    ) -> Result<(), StreamError> {
        let manifest = Manifest {
            app_id: state.app_id.clone(),
            version: state.checkpoint.version + 1,
            adds: append.adds().to_vec(),
            records: append.rows(),
            first_sequence_number: Some(first.to_string()),
            last_sequence_number: Some(last.to_string()),
            reasons: append.reasons().clone(),
        };
        let started = Instant::now();
        let handed = hand_over_files(log, append.table(), &manifest).await?;
        report.commit_millis += started.elapsed().as_secs_f64() * 1000.0;
        if let HandOver::Taken(_) = handed {
            return Err(StreamError::Taken {
                app_id: state.app_id.clone(),
                version: manifest.version,
            });
        }
        report.handed_over += 1;
        info!(
            table = state.table.name(),
            version = manifest.version,
            rows = append.rows(),
            files = manifest.adds.len(),
            "handed over"
        );
        state.checkpoint = Checkpoint {
            sequence: Some(last.clone()),
            version: manifest.version,
            first: Some(first.clone()),
            pending: None,
        };
        Ok(())
    }

    /// Grouped mode: the shard's checkpoint is its latest manifest. With none (the shard's
    /// first batch, a switch from direct mode, a manifest table lost), the table's `txn`
    /// and the span of the shard's latest commit say where it stands.
    async fn load_grouped_state(
        &self,
        log: &dyn ManifestLog,
        table: Table,
        delta: &DeltaTable,
        key: String,
        app_id: String,
        report: &mut BatchReport,
    ) -> Result<TableState, StreamError> {
        let checkpoint = match log.latest(&app_id).await? {
            Some(latest) => Checkpoint {
                sequence: parse_sequence(&key, latest.last_sequence_number.as_deref())?,
                version: latest.version,
                first: parse_sequence(&key, latest.first_sequence_number.as_deref())?,
                pending: None,
            },
            None => {
                let version = txn_version(delta, &app_id)
                    .await
                    .map_err(IngestError::from)?
                    .unwrap_or(0);
                // A shard committed before (direct mode, or a lost manifest table): its
                // latest commit's span says where it stands.
                let span = if version > 0 {
                    last_span(delta, &app_id).await?
                } else {
                    None
                };
                if version > 0 && span.is_none() {
                    warn!(
                        app_id,
                        version,
                        "no manifest and no span in the log for a shard the table has batches of: continuing after its txn; records after it may be appended twice"
                    );
                    report.repaired_checkpoints += 1;
                }
                Checkpoint {
                    version,
                    first: span.as_ref().map(|(first, _)| first.clone()),
                    sequence: span.map(|(_, last)| last),
                    pending: None,
                }
            }
        };
        Ok(TableState {
            table,
            key,
            app_id,
            checkpoint,
        })
    }

    async fn load_state(
        &self,
        table: Table,
        delta: &DeltaTable,
        shard: &ShardRecords<'_>,
        report: &mut BatchReport,
    ) -> Result<TableState, StreamError> {
        let source = format!("{}/{}", shard.stream, shard.shard);
        let key = format!("{}|{source}", self.lake.table_url(table));
        let app_id = lakehouse_lake::app_ids::ingest_app_id(&source);
        let checkpoints = match &self.mode {
            Mode::Direct(checkpoints) => checkpoints,
            Mode::Grouped { raw, quarantine } => {
                let log = pick(table, raw, quarantine);
                return self
                    .load_grouped_state(log, table, delta, key, app_id, report)
                    .await;
            }
        };
        let stored = checkpoints.load(&key).await?;
        let seen_version = stored.version;
        // A committed item without a pending commit is authoritative: every commit with
        // this app id is begun in DynamoDB first. Only a pending commit or a missing item
        // sends us to the Delta log, whose txn lookup replays the log since its checkpoint.
        if stored.pending.is_none() && seen_version > 0 {
            return Ok(TableState {
                table,
                key,
                app_id,
                checkpoint: stored,
            });
        }
        let delta_version = txn_version(delta, &app_id)
            .await
            .map_err(IngestError::from)?
            .unwrap_or(0);
        let (checkpoint, found) = reconcile(&key, stored, delta_version)?;
        match found {
            Reconciled::InSync => {}
            Reconciled::PendingCommitted(pending) => {
                warn!(
                    key,
                    version = pending.version,
                    "completing a checkpoint a crashed invocation left pending"
                );
                checkpoints.complete(&key, seen_version, &pending).await?;
                report.repaired_checkpoints += 1;
            }
            Reconciled::Lost { delta_version } => {
                warn!(
                    key,
                    delta_version,
                    "checkpoint item lost: adopting the Delta txn version; records after it may be appended twice"
                );
                checkpoints.adopt(&key, &checkpoint).await?;
                report.repaired_checkpoints += 1;
            }
        }
        Ok(TableState {
            table,
            key,
            app_id,
            checkpoint,
        })
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

/// The manifest log of `table`.
fn pick<'a>(
    table: Table,
    raw: &'a Arc<dyn ManifestLog>,
    quarantine: &'a Arc<dyn ManifestLog>,
) -> &'a dyn ManifestLog {
    if table == Table::Raw {
        raw.as_ref()
    } else {
        quarantine.as_ref()
    }
}

/// A sequence number the shard's latest manifest recorded: unparsable, its checkpoint
/// (`key`) is corrupt.
fn parse_sequence(
    key: &str,
    text: Option<&str>,
) -> Result<Option<SequenceNumber>, CheckpointError> {
    text.map(|t| {
        SequenceNumber::parse(t).map_err(|reason| CheckpointError::Corrupt {
            key: key.to_string(),
            reason: format!("manifest sequence number {t:?}: {reason}"),
        })
    })
    .transpose()
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
    let decoded = kinesis::push_record(ingestor, record, source, into).await?;
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
