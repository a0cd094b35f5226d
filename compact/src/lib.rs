//! The compaction stage: incremental, exactly-once dedup of `raw` into `staging`, then file
//! maintenance (bin-packing and vacuum) of both tables.
//!
//! - [`changes`]: what `raw` gained since a version, read from the Delta log.
//! - [`files`]: reading one data file of a table back as rows of its schema.
//! - [`resolve`]: which copy of an event wins.
//! - [`merge`]: applying the winners to `staging` in one commit.
//! - [`maintain`]: optimize and vacuum.
//! - [`lease`]: one compaction at a time per lake, through a DynamoDB lease.

pub mod changes;
mod compactor;
pub mod error;
pub mod files;
pub mod lease;
pub mod maintain;
pub mod merge;
pub mod resolve;

pub use compactor::{CommitFence, CompactOptions, CompactReport, Compactor, STAGING_APP_ID};
pub use error::CompactError;
