use deltalake::DeltaTableError;
use deltalake::arrow::error::ArrowError;
use deltalake::parquet::errors::ParquetError;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(
        "raw commit {version} is no longer in the Delta log (log retention passed before \
         compaction consumed it); rebuild staging from scratch"
    )]
    MissingRawCommit { version: u64 },
    #[error("reading {path}: {error}")]
    ReadFile { path: String, error: String },
    #[error("bad partition value {column}={value:?} in {path}")]
    PartitionValue {
        column: String,
        value: String,
        path: String,
    },
    #[error("stopped before committing: {0}")]
    Fenced(String),
    #[error(transparent)]
    Lake(#[from] lakehouse_ingest::IngestError),
    #[error("delta: {0}")]
    Delta(#[from] DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
}

pub type Result<T, E = CompactError> = std::result::Result<T, E>;
