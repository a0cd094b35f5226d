//! Grouped mode: each invocation hands its files over, as the shard's next manifest in the
//! table's manifest log, to the table's committer; the shard's latest manifest is its
//! checkpoint (see `lakehouse_lake::manifest_log`).

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use deltalake::DeltaTable;
use lakehouse_ingest::manifest::Manifest;
use lakehouse_ingest::manifest_log::{HandOver, ManifestLog, hand_over_files};
use lakehouse_ingest::{IngestError, PreparedAppend};
use lakehouse_lake::Table;
use lakehouse_lake::log::txn_version;
use tracing::{info, warn};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::error::StreamError;
use crate::order::last_span;
use crate::progress::{BatchReport, ShardProgress, TableState};
use crate::sequence::SequenceNumber;

/// Each table's manifest log.
pub struct Grouped {
    pub raw: Arc<dyn ManifestLog>,
    pub quarantine: Arc<dyn ManifestLog>,
}

impl Grouped {
    /// The manifest log of `table`.
    fn log(&self, table: Table) -> &dyn ManifestLog {
        if table == Table::Raw {
            self.raw.as_ref()
        } else {
            self.quarantine.as_ref()
        }
    }
}

#[async_trait]
impl ShardProgress for Grouped {
    /// Grouped mode: the shard's checkpoint is its latest manifest. With none (the shard's
    /// first batch, a switch from direct mode, a manifest table lost), the table's `txn`
    /// and the span of the shard's latest commit say where it stands.
    async fn load(
        &self,
        table: Table,
        delta: &DeltaTable,
        key: String,
        app_id: String,
        report: &mut BatchReport,
    ) -> Result<TableState, StreamError> {
        let log = self.log(table);
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

    /// Grouped mode: hands the table's files over as the shard's next version. Stored, the
    /// batch is the shard's for good: the manifest is its checkpoint.
    async fn land(
        &self,
        state: &mut TableState,
        append: &PreparedAppend,
        first: &SequenceNumber,
        last: &SequenceNumber,
        report: &mut BatchReport,
    ) -> Result<(), StreamError> {
        let log = self.log(state.table);
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
