use deltalake::DeltaTableError;
use deltalake::arrow::error::ArrowError;
use deltalake::datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Lake(#[from] lakehouse_lake::LakeError),
    #[error("query: {0}")]
    DataFusion(#[from] DataFusionError),
    #[error("delta: {0}")]
    Delta(#[from] DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    #[error("unknown table {0:?} (tables: raw, staging, quarantine)")]
    UnknownTable(String),
}

pub type Result<T, E = QueryError> = std::result::Result<T, E>;
