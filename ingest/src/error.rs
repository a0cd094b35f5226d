use deltalake::DeltaTableError;
use deltalake::arrow::error::ArrowError;

/// Errors of the ingest stage. Invalid events are never errors: they go to `quarantine`.
/// These are failures of the input document or of the infrastructure, and abort the batch.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("invalid lake location {uri:?}: {reason}")]
    InvalidLake { uri: String, reason: String },
    #[error("table {table} at {location} does not match the lakehouse contract: {reason}")]
    ContractMismatch {
        table: &'static str,
        location: String,
        reason: String,
    },
    #[error("{table}: no version at or before {what}")]
    NoSuchVersion { table: &'static str, what: String },
    #[error("invalid Kinesis event document {source_name}: {reason}")]
    KinesisEvent { source_name: String, reason: String },
    #[error("reading {source_name}: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("parquet encoder: {0}")]
    Encoder(String),
    #[error("delta: {0}")]
    Delta(#[from] DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;
