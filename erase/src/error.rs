use lakehouse_lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("delta: {0}")]
    Delta(#[from] deltalake::DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] deltalake::arrow::error::ArrowError),
    #[error("object store: {0}")]
    Store(#[from] deltalake::ObjectStoreError),
    #[error("invalid erasure request: {0}")]
    InvalidRequest(String),
    #[error("the erasure key: {0}")]
    Key(String),
    #[error(
        "request {request_id}: {rows} rows of the subjects are still stored; no receipt was \
         recorded: run the erasure again"
    )]
    Residue { request_id: String, rows: u64 },
    #[error(
        "{table}: the erasure's commit lost {attempts} races to concurrent writers in a row; \
         nothing of it was committed on {table}; run it again"
    )]
    Contended { table: &'static str, attempts: u32 },
}

pub type Result<T, E = EraseError> = std::result::Result<T, E>;
