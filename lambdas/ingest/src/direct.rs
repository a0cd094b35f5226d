//! Direct mode: each invocation commits its shard's batch, with the shard's `txn`, and a
//! DynamoDB checkpoint per (table, shard) says where the shard stands (see
//! [`crate::checkpoint`]): begun before the commit, completed after it, reconciled with
//! the Delta log when an invocation died between.

use std::time::Instant;

use async_trait::async_trait;
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use lakehouse_ingest::{IngestError, PreparedAppend};
use lakehouse_lake::log::txn_version;
use lakehouse_lake::{CommitMetadata, Table};
use tracing::{info, warn};

use crate::checkpoint::{Checkpoint, CheckpointStore, Pending, Reconciled, reconcile};
use crate::error::StreamError;
use crate::progress::{BatchReport, ShardProgress, TableState};
use crate::sequence::SequenceNumber;

/// Checkpoints in DynamoDB; a commit per batch.
pub struct Direct(pub CheckpointStore);

#[async_trait]
impl ShardProgress for Direct {
    async fn load(
        &self,
        table: Table,
        delta: &DeltaTable,
        key: String,
        app_id: String,
        report: &mut BatchReport,
    ) -> Result<TableState, StreamError> {
        let checkpoints = &self.0;
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

    /// Begins the checkpoint, commits the table's files with the shard's txn, completes the
    /// checkpoint.
    async fn land(
        &self,
        state: &mut TableState,
        append: &PreparedAppend,
        first: &SequenceNumber,
        last: &SequenceNumber,
        report: &mut BatchReport,
    ) -> Result<(), StreamError> {
        let checkpoints = &self.0;
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
}
