use deltalake::DeltaTableError;
use deltalake::arrow::error::ArrowError;
#[cfg(feature = "datafusion")]
use deltalake::datafusion::error::DataFusionError;
use deltalake::parquet::errors::ParquetError;

/// Failures of the lake itself: its location, its tables' contract, their files and log.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("invalid lake location {uri:?}: {reason}")]
    InvalidLake { uri: String, reason: String },
    #[error("table {table} at {location} does not match the lakehouse contract: {reason}")]
    ContractMismatch {
        table: &'static str,
        location: String,
        reason: String,
    },
    #[error(
        "no table of the lake exists at {location} (looked for raw, staging, quarantine): \
         check the location, or ingest something first"
    )]
    EmptyLake { location: String },
    #[error("{table}: no version at or before {what}")]
    NoSuchVersion { table: &'static str, what: String },
    #[error(
        "a concurrent commit (version {version}) {reason}: nothing was committed; run again to \
         continue from it"
    )]
    Conflict { version: u64, reason: String },
    #[error("lost the race to commit {attempts} times in a row: nothing was committed; retry")]
    Contended { attempts: u64 },
    #[error("reading {path}: {error}")]
    ReadFile { path: String, error: String },
    #[error(
        "{path}, written {hours} h ago, is gone: nothing was committed (a commit never names a \
         missing file); run again to write it anew"
    )]
    FileGone { path: String, hours: i64 },
    #[error(
        "reading {path}: the file is gone (removed by a later commit and vacuumed); read the \
         table again"
    )]
    Vanished { path: String },
    #[error("bad partition value {column}={value:?} in {path}")]
    PartitionValue {
        column: String,
        value: String,
        path: String,
    },
    #[error(
        "{table} version {version} can no longer be read whole: {files} of its files are gone, \
         deleted at once by erasure request {request} (committed as {table} v{erased_at}) or \
         a later one, as erasures do (docs/erasure.md); read version {erased_at} or later"
    )]
    Erased {
        table: &'static str,
        version: u64,
        erased_at: u64,
        request: String,
        files: usize,
    },
    #[error("invalid subject paths: {reason}")]
    InvalidSubjectPaths { reason: String },
    #[error("rows to write: {0}")]
    BadRows(String),
    #[error("manifest log: {0}")]
    Manifest(String),
    #[error("delta: {0}")]
    Delta(#[from] DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    #[cfg(feature = "datafusion")]
    #[error("{0}")]
    DataFusion(#[from] DataFusionError),
}

impl LakeError {
    /// A version's files or log entries are no longer there (vacuumed, or past the log's
    /// retention): what was planned on them must start over.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            LakeError::Vanished { .. } | LakeError::NoSuchVersion { .. }
        )
    }

    /// The commit certainly did not land (it lost to a concurrent one), so the files it
    /// wrote can be deleted. Any other failure of a commit may have landed (a lost response).
    pub fn committed_nothing(&self) -> bool {
        matches!(
            self,
            LakeError::Conflict { .. } | LakeError::Contended { .. }
        )
    }
}

pub type Result<T, E = LakeError> = std::result::Result<T, E>;
