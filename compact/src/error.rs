use deltalake::DeltaTableError;
use deltalake::arrow::error::ArrowError;
use lakehouse_lake::LakeError;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error(
        "raw commit {version} is no longer in the Delta log (log retention passed before \
         compaction consumed it); rebuild staging from scratch"
    )]
    MissingRawCommit { version: u64 },
    #[error(
        "raw is not the table staging was built from (staging consumed raw up to version \
         {consumed} of table {expected}; raw is now table {found} at version {head}): raw was \
         recreated. Rebuild staging from the new raw (remove the staging table; the next \
         run consumes raw from version 0), or restore the old raw"
    )]
    RawReplaced {
        consumed: u64,
        expected: String,
        found: String,
        head: u64,
    },
    #[error(
        "the key index holds staging v{indexed}, and files of that version are gone \
         (vacuumed since): run `lakehouse keys update` (or compact), then check again"
    )]
    IndexedVersionGone { indexed: u64 },
    #[error("the sweep's candidates (rows of sql/queries/duplicated_events.sql): {0}")]
    Candidates(String),
    #[error("the sweep's candidates were found as of staging v{as_of}, but staging is at v{head}")]
    CandidatesAhead { as_of: u64, head: u64 },
    #[error("a sweep by the key index: {0}")]
    SweepByIndex(String),
    #[error("a chunk of the key index's build: {0}")]
    BuildChunk(String),
    #[error("stopped before committing: {0}")]
    Fenced(String),
    #[error("stopped before committing: cannot check the right to commit: {0}")]
    FenceUnavailable(String),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error("delta: {0}")]
    Delta(#[from] DeltaTableError),
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

pub type Result<T, E = CompactError> = std::result::Result<T, E>;

/// Updates that lose to a concurrent one before one gives up.
pub(crate) const MAX_TRIES: u32 = 10;

/// Whether `e` is a race lost to a concurrent commit: reading the tables again and retrying
/// converges.
pub(crate) fn lost_race(e: &crate::CompactError) -> bool {
    matches!(
        e,
        crate::CompactError::Lake(
            LakeError::Conflict { .. } | LakeError::Contended { .. } | LakeError::Vanished { .. }
        )
    )
}
