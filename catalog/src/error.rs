use deltalake::datafusion::error::DataFusionError;
use lakehouse_lake::LakeError;

/// Errors of the catalog stage. Glue calls name the operation and the database or table.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("reading staging: {0}")]
    Scan(#[from] DataFusionError),
    #[error("{table} at {location}: {reason}")]
    Table {
        table: &'static str,
        location: String,
        reason: String,
    },
    #[error("invalid Glue database name {name:?}: {reason}")]
    InvalidDatabase { name: String, reason: &'static str },
    #[error("glue {operation} {target}: {message}")]
    Glue {
        operation: &'static str,
        target: String,
        message: String,
    },
    #[error("staging holds no events{scope}: there is nothing to infer views from")]
    NoEvents { scope: String },
    #[error("writing {path}: {error}")]
    Write { path: String, error: std::io::Error },
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
