use deltalake::DeltaTableError;
use deltalake::arrow::error::ArrowError;
use lakehouse_lake::LakeError;

/// Errors of the ingest stage. Invalid events are never errors: they go to `quarantine`.
/// These are failures of the input document or of the infrastructure, and abort the batch.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("invalid Kinesis event document {source_name}: {reason}")]
    KinesisEvent { source_name: String, reason: String },
    #[error("reading {source_name}: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    /// An input named on the command line that cannot be read as named.
    #[error("{0}")]
    Input(String),
    #[error("parquet encoder: {0}")]
    Encoder(String),
    #[error("delta: {0}")]
    Delta(#[from] DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// A bug, not an input: reported rather than a record skipped.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;
