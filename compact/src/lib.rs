//! The compaction stage: incremental, exactly-once dedup of `raw` into `staging`, then file
//! maintenance (bin-packing and vacuum) of both tables.
//!
//! - [`changes`]: what `raw` gained since a version, read from the Delta log.
//! - [`resolve`]: which copy of an event wins.
//! - [`merge`]: applying the winners to `staging` in one commit ([`write`]: its files, one
//!   per partition, written in parallel).
//! - [`lineage`]: refusing a `raw` that is not the table `staging` was built from.
//! - [`optimize`]: bin-packing small files, conflict-checked against concurrent runs.
//! - [`maintain`]: optimize and vacuum.
//!
//! A [`CommitFence`] lets the caller veto each commit (the compaction Lambda renews its
//! lease there).

pub mod changes;
mod compactor;
pub mod error;
pub mod lineage;
pub mod maintain;
pub mod merge;
pub mod optimize;
pub mod resolve;
pub mod status;
pub mod write;

pub use compactor::{
    CommitFence, CompactOptions, CompactReport, Compactor, FenceError, STAGING_APP_ID,
};
pub use error::CompactError;
