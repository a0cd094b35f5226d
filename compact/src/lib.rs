//! The compaction stage: incremental, exactly-once dedup of `raw` into `staging`, then file
//! maintenance (bin-packing and vacuum) of both tables.
//!
//! - [`changes`]: what `raw` gained since a version, read from the Delta log.
//! - [`resolve`]: which copy of an event wins.
//! - [`merge`]: applying the winners to `staging` in one commit ([`write`]: its files, one
//!   per partition, written in parallel).
//! - [`lineage`]: refusing a `raw` that is not the table `staging` was built from.
//! - [`keys`]: the key index (`staging_keys`), kept up with staging exactly once, and
//!   its check against staging; [`key_build`]: building it from all of staging,
//!   resumably.
//! - [`sweep`]: every uuid staged more than once, resolved over all of staging, or over
//!   the [`candidates`] an engine found.
//! - [`optimize`]: bin-packing small files, conflict-checked against concurrent runs;
//!   [`key_runs`]: the index's own, merging sorted runs.
//! - [`maintain`]: optimize and vacuum.
//!
//! A [`CommitFence`] lets the caller veto each commit (the compaction Lambda renews its
//! lease there).

mod arrived;
pub mod candidates;
pub mod changes;
mod compactor;
pub mod error;
pub mod flags;
pub mod key_build;
pub mod key_runs;
pub mod keys;
pub mod lineage;
pub mod maintain;
pub mod merge;
pub mod optimize;
pub mod resolve;
pub mod sweep;
pub mod write;

pub use compactor::{CommitFence, CompactOptions, CompactReport, Compactor, FenceError};
pub use error::CompactError;
pub use flags::CompactFlags;
pub use lakehouse_lake::app_ids::STAGING_APP_ID;
