//! What can fail in one invocation's batch.

use lakehouse_ingest::IngestError;

use crate::checkpoint::CheckpointError;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The manifest log (grouped mode).
    #[error(transparent)]
    Lake(#[from] lakehouse_lake::LakeError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("record {event_id}: {reason}")]
    BadRecord { event_id: String, reason: String },
    #[error(
        "{app_id}: record {record} is at or below the checkpoint ({checkpoint}) but no commit \
         holds it: batches arrive out of order (is ParallelizationFactor above 1?); nothing \
         of this batch was written"
    )]
    OutOfOrder {
        app_id: String,
        record: String,
        checkpoint: String,
    },
    #[error(
        "{app_id}: version {version} was handed over by another attempt first; the batch is \
         retried from that checkpoint"
    )]
    Taken { app_id: String, version: i64 },
}
